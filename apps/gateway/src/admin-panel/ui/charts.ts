import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { h, setAttr, setText } from './dom';

// Time-series charts (uPlot) over the gateway's sampled history. Each chart also states what it
// plots in data attributes (points, per-series counts and maxima, markers), which the browser
// test reads: canvas pixels can't be asserted on.

export interface SeriesSpec {
  label: string;
  color: string;
  /** Which y scale (axis) the series uses; default 'y'. */
  scale?: string;
  dash?: number[];
  fill?: boolean;
  /** Dots at each sample: for series with gaps (a lone sample between nulls draws no line). */
  points?: boolean;
}

export interface AxisSpec {
  scale: string;
  label: string;
  side?: 'left' | 'right';
  format?: (v: number) => string;
  /** Fixed range (shares 0–1); otherwise from 0 to the data's maximum. */
  range?: [number, number];
}

export interface ChartSpec {
  key: string;
  title: string;
  series: SeriesSpec[];
  axes: AxisSpec[];
}

const HEIGHT = 170;
const FALLBACK_WIDTH = 560;
const MARK_COLOR = '#b3261e';

export class Chart {
  readonly el: HTMLElement;
  private readonly plotEl: HTMLElement;
  private plot: uPlot | null = null;
  private marks: number[] = [];
  private readonly resize = new ResizeObserver(() => this.fit());

  constructor(private readonly spec: ChartSpec) {
    this.plotEl = h('div', { class: 'chart-plot' });
    this.el = h(
      'figure',
      { class: 'chart', dataset: { chart: spec.key, points: '0', marks: '0' } },
      h('figcaption', { class: 'chart-title', text: spec.title }),
      this.plotEl,
    );
    this.resize.observe(this.el);
  }

  /** `x` in unix seconds; one array per series in spec order; marks are unix seconds too. */
  update(window: { from: number; to: number }, x: number[], ys: (number | null)[][], marks: number[] = []): void {
    this.marks = marks.filter((t) => t >= window.from && t <= window.to);
    const data: uPlot.AlignedData = [x, ...ys];
    if (!this.plot) this.plot = new uPlot(this.options(window), data, this.plotEl);
    else {
      this.plot.setScale('x', { min: window.from, max: window.to });
      this.plot.setData(data, false);
      this.plot.setScale('x', { min: window.from, max: window.to });
    }
    this.describe(x, ys);
  }

  destroy(): void {
    this.resize.disconnect();
    this.plot?.destroy();
    this.el.remove();
  }

  private describe(x: number[], ys: (number | null)[][]): void {
    setAttr(this.el, 'data-points', x.length);
    setAttr(this.el, 'data-marks', this.marks.length);
    const summary: Record<string, { n: number; max: number | null; last: number | null }> = {};
    this.spec.series.forEach((s, i) => {
      const vs = (ys[i] ?? []).filter((v): v is number => v !== null && Number.isFinite(v));
      summary[s.label] = { n: vs.length, max: vs.length ? Math.max(...vs) : null, last: vs.at(-1) ?? null };
    });
    setAttr(this.el, 'data-series', JSON.stringify(summary));
    setAttr(this.el, 'aria-label', `${this.spec.title}: ${x.length} samples`);
  }

  private fit(): void {
    const w = this.el.clientWidth;
    if (this.plot && w > 0 && Math.abs(this.plot.width - w) > 1) this.plot.setSize({ width: w, height: HEIGHT });
  }

  private options(window: { from: number; to: number }): uPlot.Options {
    const scales: uPlot.Scales = { x: { time: true, min: window.from, max: window.to } };
    for (const a of this.spec.axes) scales[a.scale] = a.range ? { range: a.range } : { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] };
    return {
      width: this.el.clientWidth || FALLBACK_WIDTH,
      height: HEIGHT,
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      scales,
      axes: [
        { stroke: '#5b6b7c', grid: { stroke: '#eef1f4' } },
        ...this.spec.axes.map((a): uPlot.Axis => ({
          scale: a.scale,
          label: a.label,
          side: a.side === 'right' ? 1 : 3,
          stroke: '#5b6b7c',
          size: 56,
          grid: { show: a.side !== 'right', stroke: '#eef1f4' },
          values: a.format ? (_u, splits) => splits.map((v) => a.format!(v)) : undefined,
        })),
      ],
      series: [
        {},
        ...this.spec.series.map((s): uPlot.Series => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          scale: s.scale ?? 'y',
          dash: s.dash,
          fill: s.fill ? `${s.color}22` : undefined,
          spanGaps: false,
          points: { show: s.points === true, size: 5 },
        })),
      ],
      hooks: { draw: [(u) => this.drawMarks(u)] },
    };
  }

  /** Revocations: a dashed vertical line at each. */
  private drawMarks(u: uPlot): void {
    if (this.marks.length === 0) return;
    const { ctx, bbox } = u;
    ctx.save();
    ctx.strokeStyle = MARK_COLOR;
    ctx.lineWidth = Math.max(1, devicePixelRatio);
    ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
    for (const t of this.marks) {
      const px = Math.round(u.valToPos(t, 'x', true));
      ctx.beginPath();
      ctx.moveTo(px, bbox.top);
      ctx.lineTo(px, bbox.top + bbox.height);
      ctx.stroke();
    }
    ctx.restore();
  }
}

/**
 * Keeps one chart per key inside `container` (created on first sight, removed when gone), in the
 * order given, and feeds each its data.
 */
export class ChartGrid<T> {
  private readonly charts = new Map<string, Chart>();

  constructor(
    private readonly container: HTMLElement,
    private readonly specOf: (item: T) => ChartSpec[],
  ) {}

  sync(items: readonly T[], feed: (item: T, chart: Chart, index: number) => void): void {
    const seen = new Set<string>();
    let prev: Element | null = null;
    for (const item of items) {
      this.specOf(item).forEach((spec, i) => {
        seen.add(spec.key);
        let c = this.charts.get(spec.key);
        if (!c) {
          c = new Chart(spec);
          this.charts.set(spec.key, c);
        }
        const want: ChildNode | null = prev ? prev.nextSibling : this.container.firstChild;
        if (want !== c.el) this.container.insertBefore(c.el, want);
        prev = c.el;
        feed(item, c, i);
      });
    }
    for (const [k, c] of this.charts) {
      if (!seen.has(k)) {
        c.destroy();
        this.charts.delete(k);
      }
    }
  }
}

/** A line over a chart's empty area saying why there is nothing to plot yet. */
export function chartNote(el: HTMLElement, text: string): void {
  setText(el, text);
  el.hidden = text === '';
}

export const COLORS = {
  online: '#2f7fc1',
  borrowed: '#9b6cd1',
  batch: '#d98b19',
  memory: '#2d7a3e',
  slo: '#b3261e',
  p99: '#1c2733',
  queue: '#a3620a',
  replicas: '#5b6b7c',
} as const;
