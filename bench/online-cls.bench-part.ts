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
  /** Raw onnxruntime with the replica's session options over `seconds`, at the best batch size or at `batch`: items/s and its process's CPU per item. */
  raw: (seconds: number, batch?: number) => Promise<{ itemsS: number; cpuUsPerItem: number }>;
  rounds: number;
  seconds: number;
  say: (s: string) => void;
}

/** ppocr_cls's batch counters from a gateway's /metrics: batches run, rows in them, compute seconds. */
export async function clsBatchCounters(port: number): Promise<{ batches: number; rows: number; computeS: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const v = (name: string): number => Number(new RegExp(`^${name}\\{model="ppocr_cls"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { batches: v('tandem_inference_batch_size_count'), rows: v('tandem_inference_batch_size_sum'), computeS: v('tandem_inference_compute_seconds_sum') };
}

/**
 * Interleaved rounds at c = 32: raw, then each gateway, the gateways' order alternating by round
 * so that neither always follows the raw loop. Every round prints each subject's items/s, errors,
 * p99, the gateway's and the client's CPU per item, its mean batch, and its ratio to that round's raw figure;
 * also the CPU ratio, raw's CPU per item over the gateway's: how much of the gateway's CPU is the
 * model's own work (the issue's steadier figure: throughput ratios swing with the host). Then raw
 * again at the shipped gateway's mean batch of the round: onnxruntime's cost per image depends on
 * the batch, and 32 clients cannot keep the best raw batch filled, so this ratio is the gateway's
 * overhead alone.
 */
export async function clsAgainstRaw(o: ClsPhase): Promise<void> {
  for (const s of o.subjects) await closedLoop(s.cls, 32, 2);
  const ratios = o.subjects.map(() => [] as number[]);
  const cpuRatios = o.subjects.map(() => [] as number[]);
  const sameBatch: number[] = [];
  for (let i = 1; i <= o.rounds; i++) {
    const { itemsS: raw, cpuUsPerItem: rawCpu } = await o.raw(o.seconds);
    const order = o.subjects.map((_, k) => k);
    if (i % 2 === 0) order.reverse();
    const parts: string[] = [];
    let [batch0, rps0] = [NaN, NaN];
    for (const k of order) {
      const s = o.subjects[k]!;
      const pid = s.gateway.pid!;
      const [g0, c0, b0] = [cpuS(pid), cpuS(process.pid), await clsBatchCounters(s.cls.port)];
      const r = await closedLoop(s.cls, 32, o.seconds);
      const b1 = await clsBatchCounters(s.cls.port);
      const batch = (b1.rows - b0.rows) / Math.max(1, b1.batches - b0.batches);
      if (k === 0) [batch0, rps0] = [batch, r.rps];
      const us = (p: number, t0: number): number => (1e6 * (cpuS(p) - t0)) / Math.max(1, r.ok);
      const [gw, client] = [us(pid, g0), us(process.pid, c0)];
      ratios[k]!.push(r.rps / raw);
      cpuRatios[k]!.push(rawCpu / gw);
      parts[k] =
        `${s.label} ${r.rps.toFixed(0)} items/s p99 ${r.p99.toFixed(1)} ms (${r.errors} errors; gateway ${gw.toFixed(0)} µs/item, client ${client.toFixed(0)}; ` +
        `mean batch ${batch.toFixed(1)}) ` +
        `ratio ${(r.rps / raw).toFixed(3)}, CPU ratio ${(rawCpu / gw).toFixed(3)}`;
    }
    const at = Math.max(1, Math.round(batch0));
    const same = await o.raw(o.seconds, at);
    sameBatch.push(rps0 / same.itemsS);
    o.say(
      `round ${i}: raw ${raw.toFixed(0)} items/s (${rawCpu.toFixed(0)} µs/item) | ${parts.join(' | ')} | order ${order.map((k) => o.subjects[k]!.label).join(', ')} | ` +
        `raw at the ${o.subjects[0]!.label}'s batch b=${at}: ${same.itemsS.toFixed(0)} items/s (${same.cpuUsPerItem.toFixed(0)} µs/item), ratio ${(rps0 / same.itemsS).toFixed(3)}`,
    );
  }
  o.say(
    `${o.subjects[0]!.label}: median ratio to raw at its own mean batch ${median(sameBatch).toFixed(3)} (rounds ${sameBatch.map((x) => x.toFixed(3)).join(', ')})`,
  );
  o.subjects.forEach((s, k) => {
    o.say(`${s.label}: median ratio to raw ${median(ratios[k]!).toFixed(3)} (rounds ${ratios[k]!.map((x) => x.toFixed(3)).join(', ')}; target >= 0.85)`);
    o.say(
      `${s.label}: median CPU ratio (raw CPU per item / gateway's) ${median(cpuRatios[k]!).toFixed(3)} (rounds ${cpuRatios[k]!.map((x) => x.toFixed(3)).join(', ')})`,
    );
  });
  if (o.subjects.length === 2) {
    const wins = ratios[1]!.filter((x, i) => x > ratios[0]![i]!).length;
    o.say(`${o.subjects[1]!.label} beat ${o.subjects[0]!.label} in ${wins} of ${o.rounds} rounds`);
  }
}
