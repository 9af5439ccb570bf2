import { InferenceSession } from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { LocalCapacityProvider } from './capacity-provider';
import { NOOP_OBSERVER } from './inference-observer';
import { parseModelConfig } from './model-config';
import { ModelInstance } from './model-instance';
import { warmupBatchSizes, warmupInputs } from './replica-warmup';
import type { SessionFactory } from './session-factory';
import type { ModelSignature } from './tensor';

const cls: ModelSignature = { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, 48, 192] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 2] }] };

describe('replica warm-up', () => {
  it('feeds zero tensors of the configured batch size in every fixed dimension', () => {
    const cfg = parseModelConfig({ max_batch_size: 64, warmup: { batch_sizes: [1, 64] } }, 'test');
    expect(warmupBatchSizes(cfg)).toEqual([1, 64]);
    const [x] = warmupInputs(cls, cfg, 64);
    expect(x!.shape).toEqual([64, 3, 48, 192]);
    expect(x!.data).toBeInstanceOf(Float32Array);
    expect((x!.data as Float32Array).length).toBe(64 * 3 * 48 * 192);
    expect((x!.data as Float32Array).every((v) => v === 0)).toBe(true);
  });

  it('a model without a batch dimension warms up once with its own shape', () => {
    const cfg = parseModelConfig({ max_batch_size: 0, warmup: { batch_sizes: [8, 16] } }, 'test');
    expect(warmupBatchSizes(cfg)).toEqual([8]);
    const sig: ModelSignature = { inputs: [{ name: 'v', datatype: 'INT64', shape: [4] }], outputs: [] };
    const [v] = warmupInputs(sig, cfg, 8);
    expect(v!.shape).toEqual([4]);
    expect(v!.data).toBeInstanceOf(BigInt64Array);
  });

  it('refuses what it cannot feed: variable dimensions, BYTES, sizes above max_batch_size', () => {
    const cfg = parseModelConfig({ max_batch_size: 8, warmup: { batch_sizes: [8] } }, 'test');
    const dynamic: ModelSignature = { inputs: [{ name: 'img', datatype: 'FP32', shape: [-1, 3, -1, -1] }], outputs: [] };
    expect(() => warmupInputs(dynamic, cfg, 8)).toThrow(/input 'img' dim 2 is variable/);
    const text: ModelSignature = { inputs: [{ name: 's', datatype: 'BYTES', shape: [-1] }], outputs: [] };
    expect(() => warmupInputs(text, cfg, 8)).toThrow(/BYTES/);
    // Node models take BYTES: empty elements.
    const [s] = warmupInputs(text, cfg, 8, { emptyBytes: true });
    expect(s!.data).toEqual(Array.from({ length: 8 }, () => new Uint8Array(0)));
    expect(() => parseModelConfig({ max_batch_size: 8, warmup: { batch_sizes: [16] } }, 'm')).toThrow(
      /warmup.batch_sizes: warmup.batch_sizes must not exceed max_batch_size/,
    );
    expect(() => parseModelConfig({ max_batch_size: 8, warmup: { batch_sizes: [] } }, 'm')).toThrow(/warmup.batch_sizes/);
  });

  it('every new replica runs the warm-up batches on its session before it takes traffic', async () => {
    const runs: number[][] = [];
    const factory: SessionFactory = {
      async create(path) {
        const s = await InferenceSession.create(path);
        const run = s.run.bind(s) as (f: InferenceSession.FeedsType) => Promise<InferenceSession.ReturnType>;
        Object.assign(s, {
          run: (feeds: InferenceSession.FeedsType) => {
            runs.push([...feeds.x!.dims]);
            return run(feeds);
          },
        });
        return s;
      },
    };
    const config = parseModelConfig(
      { max_batch_size: 4, replicas: 2, warmup: { batch_sizes: [1, 4] }, inputs: [{ name: 'x', shape: [-1, 3, 48, 192] }] },
      'test',
    );
    const inst = await ModelInstance.load('ppocr_cls', '1', 'models/ppocr_cls/1/model.onnx', config, new LocalCapacityProvider(), NOOP_OBSERVER, factory);
    try {
      // Two replicas, each warmed with batch 1 then 4, before any request.
      const item = [3, 48, 192];
      expect(runs).toEqual([
        [1, ...item],
        [4, ...item],
        [1, ...item],
        [4, ...item],
      ]);
      expect(inst.replicas).toBe(2);
    } finally {
      await inst.close();
    }
  });

  it('a warm-up the model cannot take fails the load with the model named', async () => {
    // ppocr_cls's H and W are dynamic in the ONNX file; without config "inputs" nothing fixes them.
    const config = parseModelConfig({ max_batch_size: 4, warmup: { batch_sizes: [4] } }, 'test');
    const load = ModelInstance.load('ppocr_cls', '1', 'models/ppocr_cls/1/model.onnx', config, new LocalCapacityProvider(), NOOP_OBSERVER);
    await expect(load).rejects.toThrow(/input 'x' dim 2 is variable/);
  });
});
