import { defineModel } from '@tandem/sdk';

/** The seed's Ray Serve `Scorer`: score = tanh(x), element-wise, over the batch the batcher merged. */
export default defineModel({
  execute({ x }) {
    const xs = x!.data as Float32Array;
    const score = new Float32Array(xs.length);
    for (let i = 0; i < xs.length; i++) score[i] = Math.tanh(xs[i]!);
    return { score: { datatype: 'FP32', shape: x!.shape, data: score } };
  },
});
