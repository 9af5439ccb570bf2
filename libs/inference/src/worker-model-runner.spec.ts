import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIdentityModel } from '../../../scripts/generate-models';
import { concatInputs } from './batch-merge';
import { parseModelConfig } from './model-config';
import type { InferTensor } from './tensor';
import { batchArray, batchInputIdleBytes } from './tensor-ownership';
import { WorkerModelRunner } from './worker-model-runner';

// The identity model's input is [batch, 2]: one "row" here is 4,096 of its rows, 8,192 floats (32 KiB,
// above the clone limit, so they are moved, not cloned).
const ROW = 8192;

const rows = (n: number, seed: number): InferTensor[] => [
  { name: 'in_FP32', datatype: 'FP32', shape: [(n * ROW) / 2, 2], data: Float32Array.from({ length: n * ROW }, (_, i) => seed * 100_000 + i) },
];

describe('WorkerModelRunner: batch inputs go to the replica thread and come back to be recycled', () => {
  let dir: string;
  let runner: WorkerModelRunner;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-recycle-'));
    writeFileSync(join(dir, 'model.onnx'), buildIdentityModel(['FP32']));
    runner = await WorkerModelRunner.load(join(dir, 'model.onnx'), parseModelConfig({ max_batch_size: 64 }, 'identity'), { kind: 'cpu', intraOpThreads: 1 });
  });
  afterAll(async () => {
    await runner.release();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a merged batch written into a recycled buffer is moved, answered from its own data, and its buffer taken again by the next batch', async () => {
    expect(runner.returnsInputs).toBe(true);
    const idle0 = batchInputIdleBytes();
    const merged = concatInputs([rows(2, 1), rows(1, 2)], batchArray);
    const sent = merged[0]!.data as Float32Array;
    expect(sent.buffer.byteLength).toBe(131_072); // 3 rows = 96 KiB, in the 128 KiB class
    const [out] = await runner.runUnchecked(merged, undefined, { transfer: true });
    expect(sent.length).toBe(0); // moved, not copied
    const a = out!.data as Float32Array;
    expect(out!.shape).toEqual([(3 * ROW) / 2, 2]);
    expect([a[0], a[2 * ROW - 1], a[2 * ROW], a[3 * ROW - 1]]).toEqual([100_000, 100_000 + 2 * ROW - 1, 200_000, 200_000 + ROW - 1]);
    expect(batchInputIdleBytes()).toBe(idle0 + 131_072); // came back

    // The next batch of that class takes the same buffer; the answer already given must not change.
    const next = concatInputs([rows(1, 3), rows(2, 4)], batchArray);
    expect(batchInputIdleBytes()).toBe(idle0);
    const [out2] = await runner.runUnchecked(next, undefined, { transfer: true });
    expect((out2!.data as Float32Array)[0]).toBe(300_000);
    expect([a[0], a[2 * ROW]]).toEqual([100_000, 200_000]);
    expect(batchInputIdleBytes()).toBe(idle0 + 131_072); // one buffer going round, not one per batch
  });

  it('concurrent batches never share a buffer: every answer is its own batch’s data', async () => {
    const seeds = Array.from({ length: 12 }, (_, i) => i + 10);
    const outs = await Promise.all(
      seeds.map((s) => runner.runUnchecked(concatInputs([rows(1, s), rows(2, s + 100)], batchArray), undefined, { transfer: true })),
    );
    outs.forEach(([o], i) => {
      const d = o!.data as Float32Array;
      expect([d[0], d[ROW - 1], d[ROW], d[3 * ROW - 1]]).toEqual([
        seeds[i]! * 100_000,
        seeds[i]! * 100_000 + ROW - 1,
        (seeds[i]! + 100) * 100_000,
        (seeds[i]! + 100) * 100_000 + 2 * ROW - 1,
      ]);
    });
  });

  it('a request body’s view is copied into a recycled buffer (the body stays the caller’s) and that buffer comes back too', async () => {
    const body = new Float32Array(1 + 2 * ROW).fill(7);
    const view = body.subarray(1); // offset: a view of a larger body, never moved whole
    const idle0 = batchInputIdleBytes();
    const [out] = await runner.runUnchecked([{ name: 'in_FP32', datatype: 'FP32', shape: [ROW, 2], data: view }]);
    expect(view.length).toBe(2 * ROW); // still the caller's
    expect((out!.data as Float32Array)[2 * ROW - 1]).toBe(7);
    expect(batchInputIdleBytes()).toBeGreaterThanOrEqual(idle0 + 65_536); // the copy's 64 KiB class came back
  });
});
