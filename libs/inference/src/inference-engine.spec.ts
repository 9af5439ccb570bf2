import { InferenceSession, Tensor } from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceEngine } from './inference-engine';
import { loadModelRunner } from './load-model';
import { ModelRepository } from './model-repository';
import type { InferTensor } from './tensor';

const x = (vals: number[]): InferTensor => ({ name: 'x', datatype: 'FP32', shape: [vals.length, 1], data: Float32Array.from(vals) });

describe('InferenceEngine over the shipped repository', () => {
  const repo = new ModelRepository('models');
  const engine = new InferenceEngine({ repository: repo, defaultTimeoutMs: 5_000 });

  beforeAll(() => engine.loadAll());
  afterAll(() => engine.close());

  it('lists the shipped models with signatures from the session narrowed by config, or declared (node)', () => {
    expect(repo.list().map((m) => m.name)).toEqual(expect.arrayContaining(['ppocr_cls', 'scorer']));
    const cls = engine.metadata('ppocr_cls');
    expect(cls.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 3, 48, 192] }]);
    expect(cls.outputs).toEqual([{ name: 'softmax_0.tmp_0', datatype: 'FP32', shape: [-1, 2] }]);
    expect(engine.metadata('scorer')).toMatchObject({ versions: ['1'], platform: 'node', inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 1] }] });
    expect(engine.metadata('ppocr_cls').platform).toBe('onnxruntime_onnx');
    expect(engine.isReady('scorer', '1')).toBe(true);
  });

  it('computes tanh and merges concurrent requests into one batch while the replica is busy', async () => {
    const inst = engine.instance('scorer');
    const held = inst.pool.acquire()!;
    const before = inst.batcher.stats.batches;
    const pending = [x([0.5]), x([-1, 2]), x([3])].map((t) => engine.infer({ model: 'scorer', inputs: [t] }));
    expect(inst.batcher.queueDepth).toBe(3);
    inst.pool.release(held);
    const results = await Promise.all(pending);
    expect(inst.batcher.stats.batches - before).toBe(1);
    expect(results.map((r) => r.batchItems)).toEqual([4, 4, 4]);
    expect(results[1]!.outputs[0]!.shape).toEqual([2, 1]);
    expect(Array.from(results[1]!.outputs[0]!.data as Float32Array)).toEqual(
      [Math.fround(Math.tanh(-1)), Math.fround(Math.tanh(2))].map((v) => expect.closeTo(v, 6)),
    );
  });

  it('rejects wrong shapes, datatypes and unknown models with domain errors', async () => {
    await expect(engine.infer({ model: 'nope', inputs: [x([1])] })).rejects.toMatchObject({ code: 'not_found' });
    await expect(engine.infer({ model: 'scorer', version: '9', inputs: [x([1])] })).rejects.toMatchObject({ code: 'not_found' });
    await expect(engine.infer({ model: 'scorer', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: new Float32Array(2) }] })).rejects.toThrow(
      /shape \[1,2\]/,
    );
    await expect(engine.infer({ model: 'scorer', inputs: [{ name: 'x', datatype: 'INT32', shape: [1, 1], data: new Int32Array(1) }] })).rejects.toThrow(
      /datatype INT32/,
    );
  });

  it('expires a queued request at its deadline without running it', async () => {
    const inst = engine.instance('scorer');
    const held = inst.pool.acquire()!;
    const before = inst.batcher.stats.requests;
    await expect(engine.infer({ model: 'scorer', inputs: [x([1])], timeoutMs: 20 })).rejects.toMatchObject({ code: 'deadline_exceeded' });
    inst.pool.release(held);
    expect(inst.batcher.stats.requests).toBe(before);
  });

  it('loadModelRunner gives the batch API the same outputs as a raw session', async () => {
    const runner = await loadModelRunner('models', 'ppocr_cls');
    const data = Float32Array.from({ length: 2 * 3 * 48 * 192 }, (_, i) => ((i * 7919) % 255) / 255);
    const [out] = await runner.run([{ name: 'x', datatype: 'FP32', shape: [2, 3, 48, 192], data }]);
    const raw = await InferenceSession.create('models/ppocr_cls/1/model.onnx');
    const ref = await raw.run({ x: new Tensor('float32', data, [2, 3, 48, 192]) });
    expect(out!.shape).toEqual([2, 2]);
    expect(Array.from(out!.data as Float32Array)).toEqual(Array.from(ref['softmax_0.tmp_0']!.data as Float32Array));
    await Promise.all([runner.release(), raw.release()]);
  });
});
