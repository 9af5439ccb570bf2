import * as clipperNs from 'clipper-lib';
import type { Quad } from './image';
import { DET } from './limits';
import type { CV, Mat, MatScope } from './opencv';

/**
 * PaddleOCR's DBPostProcess (ppocr/postprocess/db_postprocess.py, score_mode 'fast') on the
 * libraries it uses in Python: OpenCV for contours, minimum-area rectangles and the box score
 * mask, Clipper 6.4.2 (what pyclipper wraps) for the unclip offset. Only the glue between
 * those calls is here, line for line with the Python.
 */

// clipper-lib is CommonJS without named-export hints: Node's ESM loader exposes only `default`.
const ClipperLib: typeof clipperNs = (clipperNs as unknown as { default?: typeof clipperNs }).default ?? clipperNs;

type Pt = [number, number];

/** Text boxes in source-image pixels, in reading order (top to bottom, then left to right). */
export function detectBoxes(cv: CV, scope: MatScope, prob: Float32Array, mapW: number, mapH: number, srcW: number, srcH: number): Quad[] {
  const bitmap = new Uint8Array(mapW * mapH);
  for (let i = 0; i < bitmap.length; i++) bitmap[i] = prob[i]! > DET.thresh ? 255 : 0;
  const bin = scope.track(cv.matFromArray(mapH, mapW, cv.CV_8UC1, bitmap));
  const pred = scope.track(cv.matFromArray(mapH, mapW, cv.CV_32FC1, prob));
  const contours = scope.track(new cv.MatVector());
  const hierarchy = scope.track(new cv.Mat());
  cv.findContours(bin, contours, hierarchy, cv.RETR_LIST, cv.CHAIN_APPROX_SIMPLE);
  scope.release(bin);

  const boxes: Quad[] = [];
  const n = Math.min(contours.size(), DET.maxCandidates);
  for (let i = 0; i < n; i++) {
    const contour = scope.track(contours.get(i));
    const first = miniBox(cv, contour);
    scope.release(contour);
    if (first.side < DET.minSize) continue;
    if (boxScore(cv, scope, pred, first.points) < DET.boxThresh) continue;
    const expanded = unclip(first.points, DET.unclipRatio);
    if (!expanded) continue;
    const poly = scope.track(cv.matFromArray(expanded.length, 1, cv.CV_32SC2, expanded.flat()));
    const second = miniBox(cv, poly);
    scope.release(poly);
    if (second.side < DET.minSize + 2) continue;
    const scaled = second.points.map(([x, y]): Pt => [clip(Math.round((x / mapW) * srcW), 0, srcW), clip(Math.round((y / mapH) * srcH), 0, srcH)]);
    // filter_tag_det_res: clockwise from top-left, inside the image, more than 3 px each way.
    const q = orderClockwise(scaled).map(([x, y]): Pt => [clip(x, 0, srcW - 1), clip(y, 0, srcH - 1)]) as Quad;
    if (Math.trunc(dist(q[0], q[1])) <= 3 || Math.trunc(dist(q[0], q[3])) <= 3) continue;
    boxes.push(q);
  }
  return readingOrder(boxes);
}

/** get_mini_boxes: the minimum-area rectangle's corners (top-left, top-right, bottom-right, bottom-left) and its short side. */
function miniBox(cv: CV, contour: Mat): { points: [Pt, Pt, Pt, Pt]; side: number } {
  const rect = cv.minAreaRect(contour);
  const p = cv.RotatedRect.points(rect)
    .map((v): Pt => [v.x, v.y])
    .sort((a, b) => a[0] - b[0]);
  const [i1, i4] = p[1]![1] > p[0]![1] ? [0, 1] : [1, 0];
  const [i2, i3] = p[3]![1] > p[2]![1] ? [2, 3] : [3, 2];
  return { points: [p[i1]!, p[i2]!, p[i3]!, p[i4]!], side: Math.min(rect.size.width, rect.size.height) };
}

/** box_score_fast: mean probability inside the box (on its bounding rectangle, masked by the polygon). */
function boxScore(cv: CV, scope: MatScope, pred: Mat, box: readonly Pt[]): number {
  const xs = box.map((p) => p[0]);
  const ys = box.map((p) => p[1]);
  const xmin = clip(Math.floor(Math.min(...xs)), 0, pred.cols - 1);
  const xmax = clip(Math.ceil(Math.max(...xs)), 0, pred.cols - 1);
  const ymin = clip(Math.floor(Math.min(...ys)), 0, pred.rows - 1);
  const ymax = clip(Math.ceil(Math.max(...ys)), 0, pred.rows - 1);
  const mask = scope.track(new cv.Mat(ymax - ymin + 1, xmax - xmin + 1, cv.CV_8UC1, new cv.Scalar(0)));
  const poly = scope.track(
    cv.matFromArray(
      box.length,
      1,
      cv.CV_32SC2,
      box.flatMap(([x, y]) => [Math.trunc(x - xmin), Math.trunc(y - ymin)]),
    ),
  );
  const polys = scope.track(new cv.MatVector());
  polys.push_back(poly);
  cv.fillPoly(mask, polys, new cv.Scalar(1));
  const roi = scope.track(pred.roi(new cv.Rect(xmin, ymin, xmax - xmin + 1, ymax - ymin + 1)));
  const score = cv.mean(roi, mask)[0] ?? 0;
  for (const m of [roi, polys, poly, mask]) scope.release(m);
  return score;
}

/** unclip: grow the polygon by area × ratio / perimeter with round joins; undefined when it splits. */
function unclip(box: readonly Pt[], ratio: number): Pt[] | undefined {
  let area = 0;
  let length = 0;
  for (let i = 0; i < box.length; i++) {
    const a = box[(i + box.length - 1) % box.length]!;
    const b = box[i]!;
    area += a[1] * b[0] - a[0] * b[1];
    length += dist(a, b);
  }
  if (length === 0) return undefined;
  const distance = (Math.abs(area / 2) * ratio) / length;
  const offset = new ClipperLib.ClipperOffset();
  offset.AddPath(
    box.map(([x, y]) => ({ X: Math.round(x), Y: Math.round(y) })),
    ClipperLib.JoinType.jtRound,
    ClipperLib.EndType.etClosedPolygon,
  );
  const out: clipperNs.Paths = [];
  offset.Execute(out, distance);
  if (out.length !== 1 || out[0]!.length < 3) return undefined;
  return out[0]!.map((p): Pt => [p.X, p.Y]);
}

/** order_points_clockwise: top-left has the smallest x+y, bottom-right the largest; y−x splits the other two. */
function orderClockwise(pts: readonly Pt[]): Pt[] {
  const s = pts.map((p) => p[0] + p[1]);
  const tl = s.indexOf(Math.min(...s));
  const br = s.indexOf(Math.max(...s));
  const rest = pts.filter((_, i) => i !== tl && i !== br);
  if (rest.length !== 2) return [pts[0]!, pts[1]!, pts[2]!, pts[3]!]; // degenerate (equal sums): keep minAreaRect's order
  const [a, b] = rest as [Pt, Pt];
  const [tr, bl] = a[1] - a[0] < b[1] - b[0] ? [a, b] : [b, a];
  return [pts[tl]!, tr, pts[br]!, bl];
}

/** sorted_boxes: by top-left y then x; boxes whose tops are within 10 px are one row, left to right. */
function readingOrder(boxes: Quad[]): Quad[] {
  const out = [...boxes].sort((a, b) => a[0][1] - b[0][1] || a[0][0] - b[0][0]);
  for (let i = 0; i < out.length - 1; i++) {
    for (let j = i; j >= 0; j--) {
      const next = out[j + 1]!;
      const cur = out[j]!;
      if (Math.abs(next[0][1] - cur[0][1]) < 10 && next[0][0] < cur[0][0]) {
        out[j] = next;
        out[j + 1] = cur;
      } else break;
    }
  }
  return out;
}

const clip = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));
const dist = (a: readonly number[], b: readonly number[]): number => Math.hypot(a[0]! - b[0]!, a[1]! - b[1]!);
