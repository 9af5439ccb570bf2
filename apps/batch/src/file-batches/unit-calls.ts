/**
 * How a chunk's `n` lines split into unit calls of `per` lines: [from, to) ranges in order. A
 * remainder of at most a quarter of `per` rides with the last call: a 4 MB chunk of 63 KB lines
 * is 65 lines, and its 65th line would be a unit call of its own (a unit to wait for, the IPC
 * round trip, a model run of one row) for one line.
 */
export function unitCallRanges(n: number, per: number): Array<[number, number]> {
  const size = Math.max(1, Math.floor(per));
  const starts: number[] = [];
  for (let i = 0; i < n; i += size) starts.push(i);
  if (starts.length > 1 && n - starts[starts.length - 1]! <= size / 4) starts.pop();
  return starts.map((from, k) => [from, starts[k + 1] ?? n]);
}
