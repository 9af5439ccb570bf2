import { describe, expect, it } from 'vitest';
import { KeepWarm } from './keep-warm';
import type { InferenceRunner } from './model-runner';
import { ReplicaPool } from './replica-pool';
import type { InferTensor } from './tensor';

function countingRunner(): InferenceRunner & { runs: number; finish: () => void } {
  const waiting: (() => void)[] = [];
  const r = {
    runs: 0,
    finish: () => waiting.splice(0).forEach((f) => f()),
    runUnchecked: () => {
      r.runs++;
      return new Promise<InferTensor[]>((res) => waiting.push(() => res([])));
    },
  };
  return r as unknown as InferenceRunner & { runs: number; finish: () => void };
}
const cpu = (id: string) => ({ id, placement: { kind: 'cpu' as const, intraOpThreads: 1 } });
const zeros = (): InferTensor[] => [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: new Float32Array(2) }];
const opts = { periodMs: 50, activeForMs: 1_000 };

describe('KeepWarm', () => {
  it('runs an idle replica of a model in use once per period, holding its slot meanwhile', async () => {
    const pool = new ReplicaPool(() => 0);
    const runner = countingRunner();
    const replica = pool.add(runner, cpu('a'), 1);
    const kw = new KeepWarm(pool, zeros, opts, () => true);
    kw.tick(100);
    expect(runner.runs).toBe(0); // never used: nothing to keep warm
    kw.used(replica, 100);
    kw.tick(120);
    expect(runner.runs).toBe(0); // ran 20 ms ago
    kw.tick(150);
    expect(runner.runs).toBe(1);
    expect(pool.hasCapacity()).toBe(false); // a request now queues behind the warm run
    kw.tick(210);
    expect(runner.runs).toBe(1); // still running: not stacked
    runner.finish();
    await new Promise((r) => setImmediate(r));
    expect(pool.hasCapacity()).toBe(true);
    kw.tick(210);
    expect(runner.runs).toBe(2);
  });

  it('leaves busy and ineligible replicas alone and goes cold after the window', () => {
    const pool = new ReplicaPool(() => 0);
    const busy = countingRunner();
    const gpu = countingRunner();
    const b = pool.add(busy, cpu('busy'), 1);
    pool.add(gpu, { id: 'g', placement: { kind: 'cuda', deviceId: 0, uuid: null, memoryMiB: 1 } }, 1);
    const kw = new KeepWarm(pool, zeros, opts, (r) => r.lease.placement.kind === 'cpu');
    kw.used(b, 0);
    expect(pool.acquire()).toBe(b);
    kw.tick(100);
    expect(busy.runs + gpu.runs).toBe(0);
    pool.release(b);
    kw.tick(1_001);
    expect(busy.runs).toBe(0); // last real work 1,001 ms ago > activeForMs
  });
});
