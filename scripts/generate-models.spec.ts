import { InferenceSession, Tensor } from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildBurnModel, buildIdentityModel } from './generate-models';

// The generated ONNX fixtures (the scorer itself is a node model now: models/scorer/1/model.ts).
describe('generate-models', () => {
  it('builds an identity model per datatype that onnxruntime loads and runs', async () => {
    const session = await InferenceSession.create(buildIdentityModel(['FP32', 'INT64']));
    expect(session.inputNames).toEqual(['in_FP32', 'in_INT64']);
    const x = Float32Array.from([1.5, -2, 0, 3]);
    const out = await session.run({ in_FP32: new Tensor('float32', x, [2, 2]), in_INT64: new Tensor('int64', BigInt64Array.from([1n, 2n]), [1, 2]) });
    expect(Array.from(out.out_FP32!.data as Float32Array)).toEqual(Array.from(x));
    expect(out.out_INT64!.dims).toEqual([1, 2]);
    await session.release();
  });

  it('builds the burn model: x [batch, 16] → y [batch, 1]', async () => {
    const session = await InferenceSession.create(buildBurnModel(2, 8));
    const out = await session.run({ x: new Tensor('float32', new Float32Array(3 * 16).fill(0.1), [3, 16]) });
    expect(out.y!.dims).toEqual([3, 1]);
    await session.release();
  });
});
