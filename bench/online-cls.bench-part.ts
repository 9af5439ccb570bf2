import type { ChildProcess } from 'node:child_process';
import { closedLoop, type Target } from './support/http-load';
import { cpuSeconds as cpuS } from './support/proc-stat';
import { median } from './support/stats';

/** Part of `npm run bench:online` (BENCH_ONLY=cls): ppocr_cls REST binary against raw onnxruntime, optionally two gateways. */

export interface ClsSubject {
  label: string;
  gateway: ChildProcess;
  cls: Target;
}

export interface ClsPhase {
  /** The shipped gateway first; a second subject (another model repository or build) is compared in the same rounds. */
  subjects: ClsSubject[];
  /** Raw onnxruntime with the replica's session options at the best batch size, items/s over `seconds`. */
  raw: (seconds: number) => Promise<number>;
  rounds: number;
  seconds: number;
  say: (s: string) => void;
}

/**
 * Interleaved rounds at c = 32: raw, then each gateway, the gateways' order alternating by round
 * so that neither always follows the raw loop. Every round prints each subject's items/s, errors,
 * p99, the gateway's and the client's CPU per item, and its ratio to that round's raw figure.
 */
export async function clsAgainstRaw(o: ClsPhase): Promise<void> {
  for (const s of o.subjects) await closedLoop(s.cls, 32, 2);
  const ratios = o.subjects.map(() => [] as number[]);
  for (let i = 1; i <= o.rounds; i++) {
    const raw = await o.raw(o.seconds);
    const order = o.subjects.map((_, k) => k);
    if (i % 2 === 0) order.reverse();
    const parts: string[] = [];
    for (const k of order) {
      const s = o.subjects[k]!;
      const pid = s.gateway.pid!;
      const [g0, c0] = [cpuS(pid), cpuS(process.pid)];
      const r = await closedLoop(s.cls, 32, o.seconds);
      const us = (p: number, t0: number): string => ((1e6 * (cpuS(p) - t0)) / Math.max(1, r.ok)).toFixed(0);
      ratios[k]!.push(r.rps / raw);
      parts[k] =
        `${s.label} ${r.rps.toFixed(0)} items/s p99 ${r.p99.toFixed(1)} ms (${r.errors} errors; gateway ${us(pid, g0)} µs/item, client ${us(process.pid, c0)}) ` +
        `ratio ${(r.rps / raw).toFixed(3)}`;
    }
    o.say(`round ${i}: raw ${raw.toFixed(0)} items/s | ${parts.join(' | ')} | order ${order.map((k) => o.subjects[k]!.label).join(', ')}`);
  }
  o.subjects.forEach((s, k) =>
    o.say(`${s.label}: median ratio to raw ${median(ratios[k]!).toFixed(3)} (rounds ${ratios[k]!.map((x) => x.toFixed(3)).join(', ')}; target >= 0.85)`),
  );
  if (o.subjects.length === 2) {
    const wins = ratios[1]!.filter((x, i) => x > ratios[0]![i]!).length;
    o.say(`${o.subjects[1]!.label} beat ${o.subjects[0]!.label} in ${wins} of ${o.rounds} rounds`);
  }
}
