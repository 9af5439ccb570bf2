import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildScorerModel, generateModels } from './generate-models';

describe('generate-models', () => {
  it('builds an ONNX scorer that onnxruntime loads and that computes tanh', async () => {
    const session = await InferenceSession.create(buildScorerModel());
    expect(session.inputNames).toEqual(['x']);
    expect(session.outputNames).toEqual(['score']);
    const x = Float32Array.from([-2, -0.5, 0, 0.25, 3]);
    const out = await session.run({ x: new Tensor('float32', x, [5, 1]) });
    expect(out.score!.dims).toEqual([5, 1]);
    const got = Array.from(out.score!.data as Float32Array);
    Array.from(x).forEach((v, i) => expect(got[i]).toBeCloseTo(Math.tanh(v), 6));
    await session.release();
  });

  it('writes the same bytes as the committed models/scorer/1/model.onnx', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gen-models-'));
    try {
      const [path] = generateModels(dir);
      const committed = readFileSync(join('models', 'scorer', '1', 'model.onnx'));
      expect(Buffer.compare(readFileSync(path!), committed)).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
