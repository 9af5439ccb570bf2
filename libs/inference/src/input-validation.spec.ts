import { describe, expect, it } from 'vitest';
import { validateInputs } from './input-validation';
import type { InferTensor, ModelSignature } from './tensor';

const sig: ModelSignature = {
  inputs: [
    { name: 's', datatype: 'BYTES', shape: [-1] },
    { name: 'x', datatype: 'FP32', shape: [-1] },
  ],
  outputs: [],
};
const run = (s: unknown, x: unknown): void =>
  validateInputs(sig, 4, [
    { name: 's', datatype: 'BYTES', shape: [2], data: s } as InferTensor,
    { name: 'x', datatype: 'FP32', shape: [2], data: x } as InferTensor,
  ]);

describe('validateInputs: data must be its datatype’s container (user code builds tensors for ctx.infer)', () => {
  it('takes Uint8Array elements (Buffers too) for BYTES and the typed array of a numeric type', () => {
    expect(() => run([Uint8Array.of(0xff), Buffer.from('a')], Float32Array.of(1, 2))).not.toThrow();
  });

  it('names what is wrong: strings for BYTES, the wrong typed array, a plain array', () => {
    expect(() => run(['a', 'b'], Float32Array.of(1, 2))).toThrow(/input 's' is BYTES: element 0 is not a Uint8Array \(got string\)/);
    expect(() => run(Uint8Array.of(1, 2), Float32Array.of(1, 2))).toThrow(/input 's' is BYTES: its data must be an array of Uint8Array/);
    expect(() => run([Uint8Array.of(1), Uint8Array.of(2)], Float64Array.of(1, 2))).toThrow(
      /input 'x' is FP32: its data must be a Float32Array \(got Float64Array\)/,
    );
    expect(() => run([Uint8Array.of(1), Uint8Array.of(2)], [1, 2])).toThrow(/got an array/);
  });
});
