/** The median of the finite values (NaN when there are none): the benchmarks' headline over rounds. */
export function median(xs: readonly number[]): number {
  const a = xs.filter(Number.isFinite).sort((x, y) => x - y);
  return a.length === 0 ? NaN : a.length % 2 ? a[(a.length - 1) / 2]! : (a[a.length / 2 - 1]! + a[a.length / 2]!) / 2;
}
