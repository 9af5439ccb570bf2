import type { ModelContext, Tensor } from '@tandem/sdk';
import { ctcDecode } from './ctc';
import { detectBoxes } from './db-postprocess';
import { cropLine, decodeImage, detInput, packLines, scaledWidth, toMat, type Quad } from './image';
import { CLS, LIMITS, MODELS, REC } from './limits';
import { MatScope, opencvError, type CV, type Mat } from './opencv';

/** What a replica keeps between requests. */
export interface OcrState {
  cv: CV;
  /** Recogniser classes: blank, the dictionary, space. */
  classes: readonly string[];
}

export interface OcrLine {
  text: string;
  /** Mean character confidence. */
  score: number;
  box: Quad;
  /** The direction classifier turned the crop 180° before recognition. */
  rotated: boolean;
}

type Infer = ModelContext['infer'];

/**
 * One image to its text lines, top to bottom: decode → ppocr_det → DB boxes → crops →
 * ppocr_cls (turn 180° crops) → ppocr_rec per width bucket → CTC. The three networks are
 * repository models reached through `infer`, so each keeps its own batcher and device share
 * and lines from concurrent images batch together there.
 */
export async function readText(state: OcrState, infer: Infer, bytes: Uint8Array, signal: AbortSignal): Promise<OcrLine[]> {
  const img = await decodeImage(bytes);
  signal.throwIfAborted();
  const { cv } = state;
  const scope = new MatScope();
  try {
    const src = toMat(cv, scope, img);
    const det = detInput(cv, scope, src);
    const shape = [1, 3, det.height, det.width];
    const detOut = await infer(MODELS.det.name, [{ name: MODELS.det.input, datatype: 'FP32', shape, data: det.data }], { outputs: [MODELS.det.output] });
    const prob = floats(detOut, MODELS.det.name, MODELS.det.output, [1, 1, det.height, det.width]);
    const boxes = detectBoxes(cv, scope, prob, det.width, det.height, img.width, img.height).slice(0, LIMITS.maxLines);
    if (boxes.length === 0) return [];
    signal.throwIfAborted();

    const crops = boxes.map((b) => cropLine(cv, scope, src, b));
    scope.release(src);
    const rotated = await classify(cv, scope, infer, crops);
    signal.throwIfAborted();
    const read = await recognise(state, scope, infer, crops);
    return boxes.map((box, i) => ({ ...read[i]!, box, rotated: rotated[i]! })).filter((l) => l.text.trim() !== '' && l.score >= REC.dropScore);
  } catch (e) {
    throw opencvError(cv, e);
  } finally {
    scope.free();
  }
}

/**
 * Runs the direction classifier and turns the upside-down crops in place. A line much wider
 * than the classifier's 4:1 input is not squeezed into it whole (at 40:1 the glyphs are noise
 * to it and it calls straight lines upside down): it sees up to CLS.maxWindows 4:1 windows
 * spread along the line, and their probabilities are averaged.
 */
async function classify(cv: CV, scope: MatScope, infer: Infer, crops: Mat[]): Promise<boolean[]> {
  const views: { owner: number; view: Mat }[] = [];
  crops.forEach((crop, owner) => {
    const winW = Math.max(1, Math.round((crop.rows * CLS.width) / CLS.height));
    if (crop.cols <= winW * CLS.maxSqueeze) return void views.push({ owner, view: crop });
    const k = Math.min(CLS.maxWindows, Math.ceil(crop.cols / winW));
    const step = (crop.cols - winW) / (k - 1);
    for (let j = 0; j < k; j++) views.push({ owner, view: scope.track(crop.roi(new cv.Rect(Math.round(j * step), 0, winW, crop.rows))) });
  });
  const p180 = new Float64Array(crops.length);
  const p0 = new Float64Array(crops.length);
  const n = new Uint16Array(crops.length);
  const calls: Promise<void>[] = [];
  for (let start = 0; start < views.length; start += CLS.maxBatch) {
    const chunk = views.slice(start, start + CLS.maxBatch);
    const data = packLines(
      cv,
      scope,
      chunk.map((v) => v.view),
      CLS.height,
      CLS.width,
    );
    const shape = [chunk.length, 3, CLS.height, CLS.width];
    calls.push(
      infer(MODELS.cls.name, [{ name: MODELS.cls.input, datatype: 'FP32', shape, data }], { outputs: [MODELS.cls.output] }).then((out) => {
        const p = floats(out, MODELS.cls.name, MODELS.cls.output, [chunk.length, 2]);
        chunk.forEach(({ owner }, i) => {
          // Labels are ['0', '180'].
          p0[owner] += p[i * 2]!;
          p180[owner] += p[i * 2 + 1]!;
          n[owner]++;
        });
      }),
    );
  }
  await Promise.all(calls);
  for (const v of views) if (!crops.includes(v.view)) scope.release(v.view);
  return crops.map((crop, i) => {
    // Turn only when '180' wins and is sure (cls_thresh).
    const turn = p180[i]! > p0[i]! && p180[i]! / n[i]! > CLS.thresh;
    if (turn) cv.rotate(crop, crop, cv.ROTATE_180);
    return turn;
  });
}

/** Width bucket of a crop: its width at height 48, rounded up to REC.widthStep, within [minWidth, maxWidth]. */
export function recBucket(width: number): number {
  return Math.min(REC.maxWidth, Math.max(REC.minWidth, Math.ceil(width / REC.widthStep) * REC.widthStep));
}

/** Recognises every crop: one ppocr_rec call per width bucket (chunked), all in flight together. */
async function recognise(state: OcrState, scope: MatScope, infer: Infer, crops: Mat[]): Promise<{ text: string; score: number }[]> {
  const { cv, classes } = state;
  const results: { text: string; score: number }[] = crops.map(() => ({ text: '', score: 0 }));
  const buckets = new Map<number, number[]>();
  crops.forEach((crop, i) => {
    const w = recBucket(scaledWidth(crop, REC.height));
    buckets.set(w, [...(buckets.get(w) ?? []), i]);
  });
  const calls: Promise<void>[] = [];
  for (const [width, members] of buckets) {
    const per = Math.max(1, Math.min(REC.maxBatch, Math.floor(REC.maxBatchColumns / width)));
    for (let start = 0; start < members.length; start += per) {
      const idx = members.slice(start, start + per);
      const data = packLines(
        cv,
        scope,
        idx.map((i) => crops[i]!),
        REC.height,
        width,
      );
      const shape = [idx.length, 3, REC.height, width];
      calls.push(
        infer(MODELS.rec.name, [{ name: MODELS.rec.input, datatype: 'FP32', shape, data }], { outputs: [MODELS.rec.output] }).then((out) => {
          const t = out[MODELS.rec.output];
          const steps = t?.shape[1] ?? 0;
          const probs = floats(out, MODELS.rec.name, MODELS.rec.output, [idx.length, steps, classes.length]);
          idx.forEach((line, n) => (results[line] = ctcDecode(probs, n * steps * classes.length, steps, classes)));
        }),
      );
    }
  }
  await Promise.all(calls);
  return results;
}

/** A sub-model's FP32 output, checked against the shape the pipeline relies on. */
function floats(out: Record<string, Tensor>, model: string, name: string, shape: readonly number[]): Float32Array {
  const t = out[name];
  if (!t) throw new Error(`${model} returned no output '${name}'`);
  // The tag, not instanceof: a tensor built in another realm (worker, vm context) is fine too.
  const isF32 = ArrayBuffer.isView(t.data) && (t.data as Float32Array)[Symbol.toStringTag] === 'Float32Array';
  const ok = t.datatype === 'FP32' && isF32 && t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]);
  if (!ok) throw new Error(`${model} output '${name}' is ${t.datatype} [${t.shape}], the pipeline expects FP32 [${shape}]`);
  return t.data as Float32Array;
}
