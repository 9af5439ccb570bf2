import { describe, expect, it } from 'vitest';
import { concatInputs, scatterOutputs } from './batch-merge';
import { DynamicBatcher } from './dynamic-batcher';
import type { InferenceRunner } from './model-runner';
import { ReplicaPool } from './replica-pool';
import type { InferTensor } from './tensor';

// Bytes no UTF-8 round trip would keep: NUL, 0xFF, a PNG signature, a lone continuation byte.
const RAW = [Uint8Array.of(0x00, 0xff, 0x89, 0x50, 0x4e, 0x47), new Uint8Array(0), Uint8Array.of(0x80), Uint8Array.of(0xc3, 0x28)];
const bytesTensor = (rows: Uint8Array[][]): InferTensor => ({ name: 'b', datatype: 'BYTES', shape: [rows.length, rows[0]!.length], data: rows.flat() });
const hex = (t: InferTensor): string[] => (t.data as Uint8Array[]).map((b) => Buffer.from(b).toString('hex'));

describe('batch merge and split', () => {
  it('BYTES: requests merge along dim 0 and split back, every element byte for byte', () => {
    const a = bytesTensor([[RAW[0]!, RAW[1]!]]);
    const b = bytesTensor([
      [RAW[2]!, RAW[3]!],
      [RAW[3]!, RAW[0]!],
    ]);
    const [merged] = concatInputs([[a], [b]]);
    expect(merged!.shape).toEqual([3, 2]);
    expect(hex(merged!)).toEqual([...hex(a), ...hex(b)]);
    const [pa, pb] = scatterOutputs([merged!], [1, 2]);
    expect([pa![0]!.shape, hex(pa![0]!)]).toEqual([a.shape, hex(a)]);
    expect([pb![0]!.shape, hex(pb![0]!)]).toEqual([b.shape, hex(b)]);
  });

  it('numeric inputs merge into one fresh array and split into views', () => {
    const x = (v: number[]): InferTensor => ({ name: 'x', datatype: 'FP32', shape: [v.length, 1], data: Float32Array.from(v) });
    const [m] = concatInputs([[x([1])], [x([2, 3])]]);
    expect(Array.from(m!.data as Float32Array)).toEqual([1, 2, 3]);
    const [, second] = scatterOutputs([m!], [1, 2]);
    expect((second![0]!.data as Float32Array).buffer).toBe((m!.data as Float32Array).buffer);
  });

  it('the dynamic batcher merges BYTES requests, runs them once and answers each its own bytes', async () => {
    const runs: number[] = [];
    // An identity replica: what a node model returning its input would do.
    const echo: InferenceRunner = {
      runUnchecked: async (inputs: readonly InferTensor[]) => {
        runs.push(inputs[0]!.shape[0]!);
        return inputs.map((t) => ({ ...t, name: 'out' }));
      },
    } as unknown as InferenceRunner;
    const pool = new ReplicaPool(() => 0);
    pool.add(echo, { id: 'r', placement: { kind: 'cpu', intraOpThreads: 1 } }, 1);
    const batcher = new DynamicBatcher(pool, { model: 'm', version: '1', maxBatchSize: 8, maxQueueDelayUs: 50_000, maxQueueSize: 8 });
    const reqs = [
      bytesTensor([[RAW[0]!, RAW[3]!]]),
      bytesTensor([
        [RAW[2]!, RAW[1]!],
        [RAW[0]!, RAW[2]!],
      ]),
    ];
    const answers = await Promise.all(reqs.map((t) => batcher.submit([t], 5_000)));
    expect(runs).toEqual([3]);
    answers.forEach((r, i) => {
      expect(r.batchItems).toBe(3);
      expect([r.outputs[0]!.shape, hex(r.outputs[0]!)]).toEqual([reqs[i]!.shape, hex(reqs[i]!)]);
    });
    batcher.close();
  });
});
