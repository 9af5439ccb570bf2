import { readdirSync, readFileSync } from 'node:fs';
import { cpuTimesMs } from './hybrid-stack';

/**
 * BENCH_TRACE's CPU view of a phase's first second: per process group, time on a CPU and time
 * waiting for one (ns from /proc/<pid>/task/<tid>/schedstat: exact, unlike the 10 ms ticks of
 * /proc/<pid>/stat), sampled every SAMPLE_MS. Waiting time of the gateway's threads is the
 * contention online pays; the other groups' run time says who took the cores meanwhile.
 */
const SAMPLE_MS = 25;

type Groups = Record<string, number[]>;
interface Point {
  at: number;
  by: Record<string, { run: number; wait: number }>;
  /** /proc/stat's first line (all CPUs), in ms: idle and steal (USER_HZ ticks, so ±10 ms a bucket). */
  cpu: { idle: number; steal: number };
}

/** A process's threads summed, and by thread name: `main`, else its `comm` (on Node 20 every other thread is "node"). */
function schedOf(pid: number, byThread?: Map<string, { run: number; wait: number }>): { run: number; wait: number } {
  let run = 0;
  let wait = 0;
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return { run, wait };
  }
  for (const tid of tids) {
    try {
      const [r, w] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ');
      run += Number(r);
      wait += Number(w);
      if (byThread) {
        const comm = tid === String(pid) ? 'main' : readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
        const t = byThread.get(comm) ?? { run: 0, wait: 0 };
        t.run += Number(r);
        t.wait += Number(w);
        byThread.set(comm, t);
      }
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return { run, wait };
}

export class SchedTrace {
  private readonly points: Point[] = [];
  private timer: NodeJS.Timeout | undefined;

  /**
   * Samples the threads of `groups` (listed once: /proc scans cost more than the samples) for `ms`
   * from now; `threads`: groups also shown by thread name (the batch worker: its main thread and the rest).
   */
  constructor(
    private readonly groups: Groups,
    ms: number,
    private readonly threads: readonly string[] = [],
  ) {
    const end = Date.now() + ms;
    this.sample();
    this.timer = setInterval(() => {
      this.sample();
      if (Date.now() >= end) this.stop();
    }, SAMPLE_MS);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private sample(): void {
    const by: Point['by'] = {};
    for (const [name, pids] of Object.entries(this.groups)) {
      const s = { run: 0, wait: 0 };
      const byThread = this.threads.includes(name) ? new Map<string, { run: number; wait: number }>() : undefined;
      for (const p of pids) {
        const x = schedOf(p, byThread);
        s.run += x.run;
        s.wait += x.wait;
      }
      by[name] = s;
      for (const [comm, t] of byThread ?? []) by[`${name}:${comm}`] = t;
    }
    this.points.push({ at: Date.now(), by, cpu: cpuTimesMs() });
  }

  /**
   * Per 100 ms from `t0`: each group's ms on a CPU / ms waiting for one, then the ms both cores
   * sat idle and the ms the host took (steal). Processes that ended in
   * a bucket drop out of its sums (a negative reading is shown as 0).
   */
  render(t0: number, buckets = 10, width = 100): string {
    const at = (t: number): Point | undefined =>
      this.points.reduce<Point | undefined>((best, p) => (Math.abs(p.at - t) < Math.abs((best?.at ?? Infinity) - t) ? p : best), undefined);
    const cells: string[] = [];
    for (let b = 0; b < buckets; b++) {
      const a = at(t0 + b * width);
      const z = at(t0 + (b + 1) * width);
      if (!a || !z || z.at <= a.at) break;
      const ms = (g: string, k: 'run' | 'wait'): number => Math.max(0, ((z.by[g]?.[k] ?? 0) - (a.by[g]?.[k] ?? 0)) / 1e6);
      const cell = (g: string, label = g): string => `${label} ${ms(g, 'run').toFixed(0)}/${ms(g, 'wait').toFixed(0)}`;
      const parts = Object.keys(this.groups).map((g) => {
        // Threads of a group broken down, those with at least 1 ms on or waiting for a core.
        const subs = Object.keys(z.by).filter((k) => k.startsWith(`${g}:`) && ms(k, 'run') + ms(k, 'wait') >= 1);
        return subs.length > 0 ? `${cell(g)} (${subs.map((k) => cell(k, k.slice(g.length + 1))).join(', ')})` : cell(g);
      });
      parts.push(`cores idle ${z.cpu.idle - a.cpu.idle}, host steal ${z.cpu.steal - a.cpu.steal}`);
      cells.push(`[${b * width}-${(b + 1) * width} ms] ${parts.join(', ')}`);
    }
    return cells.join('\n      ');
  }
}
