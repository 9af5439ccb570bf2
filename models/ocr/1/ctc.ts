import { readFile } from 'node:fs/promises';

/**
 * The recogniser's classes: CTC blank, the dictionary's characters one a line, then a space
 * (use_space_char), so index i of the output is `classes[i]`.
 */
export async function readClasses(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  const keys = text.split(/\r?\n/);
  if (keys.at(-1) === '') keys.pop();
  return ['', ...keys, ' '];
}

/**
 * Greedy CTC decoding of one line (CTCLabelDecode): the most likely class per time step,
 * repeats collapsed, blanks dropped; the score is the mean probability of the kept steps.
 */
export function ctcDecode(probs: Float32Array, offset: number, steps: number, classes: readonly string[]): { text: string; score: number } {
  const k = classes.length;
  let text = '';
  let sum = 0;
  let kept = 0;
  let prev = -1;
  for (let t = 0; t < steps; t++) {
    const row = offset + t * k;
    let best = 0;
    let bestP = probs[row]!;
    for (let c = 1; c < k; c++) {
      const p = probs[row + c]!;
      if (p > bestP) {
        bestP = p;
        best = c;
      }
    }
    if (best !== 0 && best !== prev) {
      text += classes[best];
      sum += bestP;
      kept++;
    }
    prev = best;
  }
  return { text, score: kept > 0 ? sum / kept : 0 };
}
