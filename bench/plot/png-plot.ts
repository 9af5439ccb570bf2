/**
 * Dependency-free line-chart renderer for bench traces: panels stacked vertically sharing the
 * x axis, written as an 8-bit RGB PNG (node:zlib for deflate, CRC32 implemented here).
 */
import { deflateSync } from 'node:zlib';
import { GLYPH_H, drawText, textWidth } from './bitmap-font';

export interface PlotSeries { name: string; color: [number, number, number]; points: { x: number; y: number }[]; axis?: 'left' | 'right'; step?: boolean /* draw as step line */ }
export interface PlotPanel { title: string; yLabel: string; yRightLabel?: string; series: PlotSeries[]; yMin?: number; yMax?: number }
export interface PlotOptions { width?: number; height?: number; title: string; xLabel: string; panels: PlotPanel[] }

type RGB = readonly [number, number, number];

// ---- PNG encoding ----

const CRC_TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  // The CRC covers the type and the data, not the length.
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

export function encodePng(width: number, height: number, rgb: Uint8Array): Buffer {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) throw new Error(`bad PNG size ${width}x${height}`);
  if (rgb.length !== width * height * 3) throw new Error(`expected ${width * height * 3} RGB bytes, got ${rgb.length}`);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit depth, colour type 2 (RGB), deflate, adaptive filtering, no interlace
  const stride = width * 3;
  const raw = Buffer.alloc(height * (stride + 1)); // each row: filter byte 0 (None), then pixels
  for (let y = 0; y < height; y++) raw.set(rgb.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}

// ---- raster canvas ----

class Canvas {
  readonly px: Uint8Array;
  constructor(readonly w: number, readonly h: number) {
    this.px = new Uint8Array(w * h * 3).fill(255);
  }
  set(x: number, y: number, c: RGB): void {
    if (x < 0 || y < 0 || x >= this.w || y >= this.h) return;
    const i = (y * this.w + x) * 3;
    this.px[i] = c[0];
    this.px[i + 1] = c[1];
    this.px[i + 2] = c[2];
  }
  rect(x: number, y: number, w: number, h: number, c: RGB): void {
    for (let j = 0; j < h; j++) for (let i = 0; i < w; i++) this.set(x + i, y + j, c);
  }
  /** Bresenham with a 2x2 stamp: 2px lines without anti-aliasing. Endpoints must be pre-clipped. */
  line(x0: number, y0: number, x1: number, y1: number, c: RGB, thick = 2): void {
    x0 = Math.round(x0); y0 = Math.round(y0); x1 = Math.round(x1); y1 = Math.round(y1);
    const dx = Math.abs(x1 - x0), dy = -Math.abs(y1 - y0);
    const sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    let err = dx + dy;
    for (;;) {
      this.rect(x0, y0, thick, thick, c);
      if (x0 === x1 && y0 === y1) return;
      const e2 = 2 * err;
      if (e2 >= dy) { err += dy; x0 += sx; }
      if (e2 <= dx) { err += dx; y0 += sy; }
    }
  }
  text(x: number, y: number, s: string, c: RGB, scale = 1, vertical = false): void {
    drawText((px, py) => this.set(px, py, c), Math.round(x), Math.round(y), s, scale, vertical);
  }
}

interface Rect { x0: number; y0: number; x1: number; y1: number }

/** Liang–Barsky clip, so wild values (1e12, off-scale points) never rasterize huge lines. */
function clip(ax: number, ay: number, bx: number, by: number, r: Rect): [number, number, number, number] | null {
  let t0 = 0, t1 = 1;
  const dx = bx - ax, dy = by - ay;
  const edges: [number, number][] = [[-dx, ax - r.x0], [dx, r.x1 - ax], [-dy, ay - r.y0], [dy, r.y1 - ay]];
  for (const [p, q] of edges) {
    if (p === 0) { if (q < 0) return null; continue; }
    const t = q / p;
    if (p < 0) { if (t > t1) return null; if (t > t0) t0 = t; }
    else { if (t < t0) return null; if (t < t1) t1 = t; }
  }
  return [ax + t0 * dx, ay + t0 * dy, ax + t1 * dx, ay + t1 * dy];
}

// ---- scales and ticks ----

interface Scale { lo: number; hi: number; ticks: number[]; step: number }

/** 1/2/5×10^k steps, domain widened to whole steps so ticks land on round numbers. */
function niceScale(lo: number, hi: number, target: number): Scale {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) { lo = 0; hi = 1; }
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) { const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1; lo -= pad; hi += pad; }
  const raw = (hi - lo) / Math.max(1, target);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / mag;
  const step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  const nlo = Math.floor(lo / step + 1e-9) * step, nhi = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let i = 0; nlo + i * step <= nhi + step * 1e-9 && i < 1000; i++) ticks.push(nlo + i * step);
  return { lo: nlo, hi: nhi, ticks, step };
}

function fmtTick(v: number, step: number): string {
  if (Math.abs(v) < step * 1e-6) return '0';
  const big = Math.abs(v) >= 1e6;
  if (big || step < 1e-4) return v.toExponential(Math.max(0, Math.min(3, Math.ceil(-Math.log10(step / Math.abs(v)))))).replace('e+', 'e');
  const decimals = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9));
  return v.toFixed(Math.min(decimals, 6));
}

function extent(series: PlotSeries[], key: 'x' | 'y'): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const s of series) for (const p of s.points) {
    const v = p[key];
    if (!Number.isFinite(v) || !Number.isFinite(p.x) || !Number.isFinite(p.y)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

// ---- layout and rendering ----

const BLACK: RGB = [0, 0, 0], AXIS: RGB = [60, 60, 60], GRID: RGB = [228, 228, 228], LABEL: RGB = [40, 40, 40];
const TITLE_H = 34, BOTTOM_H = 46, LEFT_W = 78, HEADER_H = 16, GAP = 12;

export function renderPlot(opts: PlotOptions): Buffer {
  const n = Math.max(1, opts.panels.length);
  const hasRight = opts.panels.some((p) => p.series.some((s) => s.axis === 'right'));
  const width = Math.max(200, Math.round(opts.width ?? 1000));
  const height = Math.max(TITLE_H + BOTTOM_H + n * 60, Math.round(opts.height ?? TITLE_H + BOTTOM_H + n * 240));
  const cv = new Canvas(width, height);
  const plotX0 = LEFT_W, plotX1 = width - (hasRight ? LEFT_W : 24);
  const panelH = (height - TITLE_H - BOTTOM_H) / n;

  cv.text((width - textWidth(opts.title, 2)) / 2, 10, opts.title, BLACK, 2);
  const all = opts.panels.flatMap((p) => p.series);
  const xs = niceScale(...extent(all, 'x'), Math.max(2, Math.floor((plotX1 - plotX0) / 90)));
  const mapX = (x: number): number => plotX0 + ((x - xs.lo) / (xs.hi - xs.lo)) * (plotX1 - plotX0);

  opts.panels.forEach((panel, i) => {
    const top = Math.round(TITLE_H + i * panelH);
    const r: Rect = { x0: plotX0, y0: top + HEADER_H, x1: plotX1, y1: Math.round(top + panelH - GAP) };
    const yTarget = Math.max(2, Math.floor((r.y1 - r.y0) / 40));
    const left = panel.series.filter((s) => s.axis !== 'right'), right = panel.series.filter((s) => s.axis === 'right');
    const [dlo, dhi] = extent(left, 'y');
    const ys = niceScale(panel.yMin ?? dlo, panel.yMax ?? dhi, yTarget);
    // Explicit bounds are kept exactly; only data-derived ends are rounded outward.
    if (panel.yMin !== undefined && Number.isFinite(panel.yMin)) ys.lo = panel.yMin;
    if (panel.yMax !== undefined && Number.isFinite(panel.yMax)) ys.hi = panel.yMax;
    if (!(ys.hi > ys.lo)) Object.assign(ys, niceScale(dlo, dhi, yTarget)); // contradictory bounds: fall back to data
    const yrs = right.length > 0 ? niceScale(...extent(right, 'y'), yTarget) : null;
    const mapY = (s: Scale) => (y: number): number => r.y1 - ((y - s.lo) / (s.hi - s.lo || 1)) * (r.y1 - r.y0);

    // Grid first so axes and data draw over it.
    for (const t of xs.ticks) { const x = Math.round(mapX(t)); for (let y = r.y0; y <= r.y1; y++) cv.set(x, y, GRID); }
    let leftW = 0, rightW = 0; // widest tick labels, so axis titles sit just beyond them
    for (const t of ys.ticks) {
      if (t < ys.lo || t > ys.hi) continue;
      const y = Math.round(mapY(ys)(t));
      for (let x = r.x0; x <= r.x1; x++) cv.set(x, y, GRID);
      cv.line(r.x0 - 5, y, r.x0 - 1, y, AXIS, 1);
      const lbl = fmtTick(t, ys.step);
      cv.text(r.x0 - 8 - textWidth(lbl), y - 3, lbl, LABEL);
      leftW = Math.max(leftW, textWidth(lbl));
    }
    if (yrs) for (const t of yrs.ticks) {
      const y = Math.round(mapY(yrs)(t));
      cv.line(r.x1 + 1, y, r.x1 + 5, y, AXIS, 1);
      const lbl = fmtTick(t, yrs.step);
      cv.text(r.x1 + 8, y - 3, lbl, LABEL);
      rightW = Math.max(rightW, textWidth(lbl));
    }
    for (const t of xs.ticks) {
      const x = Math.round(mapX(t));
      cv.line(x, r.y1 + 1, x, r.y1 + 4, AXIS, 1);
      if (i === opts.panels.length - 1) { const lbl = fmtTick(t, xs.step); cv.text(x - textWidth(lbl) / 2, r.y1 + 7, lbl, LABEL); }
    }
    // Axes frame.
    cv.line(r.x0, r.y0, r.x0, r.y1, AXIS, 1);
    cv.line(r.x0, r.y1, r.x1, r.y1, AXIS, 1);
    cv.line(r.x1, r.y0, r.x1, r.y1, yrs ? AXIS : GRID, 1);
    cv.line(r.x0, r.y0, r.x1, r.y0, GRID, 1);

    // Axis labels, rotated, centred on the plot's height.
    const midY = (r.y0 + r.y1) / 2;
    cv.text(Math.max(2, r.x0 - 14 - leftW - GLYPH_H), midY - textWidth(panel.yLabel) / 2, panel.yLabel, LABEL, 1, true);
    if (yrs && panel.yRightLabel) cv.text(Math.min(width - 2 - GLYPH_H, r.x1 + 14 + rightW), midY - textWidth(panel.yRightLabel) / 2, panel.yRightLabel, LABEL, 1, true);

    // Header: title on the left, legend right-aligned (or after the title if it would collide).
    cv.text(r.x0, top + 4, panel.title, BLACK);
    const items = panel.series.map((s) => ({ s, label: s.axis === 'right' && left.length > 0 ? `${s.name} (R)` : s.name }));
    const legendW = items.reduce((w, it) => w + 16 + textWidth(it.label) + 12, 0);
    let lx = Math.max(r.x0 + textWidth(panel.title) + 16, r.x1 - legendW);
    for (const { s, label } of items) {
      cv.rect(lx, top + 6, 12, 3, s.color);
      cv.text(lx + 16, top + 4, label, LABEL);
      lx += 16 + textWidth(label) + 12;
    }

    // Data last: clip to the plot area, then nudge ends inward so the 2px stamp stays inside the
    // frame (clipping to the inset rect instead would drop lines lying exactly on yMin).
    const cl = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));
    for (const s of panel.series) {
      const my = mapY(s.axis === 'right' && yrs ? yrs : ys);
      let prev: [number, number] | null = null;
      for (const p of s.points) {
        if (!Number.isFinite(p.x) || !Number.isFinite(p.y)) { prev = null; continue; } // a gap, not a crash
        const cur: [number, number] = [mapX(p.x), my(p.y)];
        const segs: [number, number, number, number][] = [];
        if (prev && s.step) segs.push([prev[0], prev[1], cur[0], prev[1]], [cur[0], prev[1], cur[0], cur[1]]);
        else if (prev) segs.push([prev[0], prev[1], cur[0], cur[1]]);
        else segs.push([cur[0], cur[1], cur[0], cur[1]]); // lone point still shows as a dot
        for (const [ax, ay, bx, by] of segs) {
          const c = clip(ax, ay, bx, by, r);
          if (c) cv.line(cl(c[0], r.x0 + 1, r.x1 - 2), cl(c[1], r.y0, r.y1 - 2), cl(c[2], r.x0 + 1, r.x1 - 2), cl(c[3], r.y0, r.y1 - 2), s.color);
        }
        prev = cur;
      }
    }
  });

  cv.text((plotX0 + plotX1 - textWidth(opts.xLabel)) / 2, height - 16, opts.xLabel, LABEL);
  return encodePng(width, height, cv.px);
}
