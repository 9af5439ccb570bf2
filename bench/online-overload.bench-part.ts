import { closedLoop, type LoadResult, type Target } from './support/http-load';

/**
 * Part of `npm run bench:online` for issue 20: goodput under heavy overload. 600 closed-loop
 * clients that retry at once after a 503 (the worst case: no client backs off) against 32
 * clients, back to back, `rounds` times; goodput is answered-200 images/s, latency is that of
 * admitted (200) requests only.
 */
export interface OverloadResult {
  c32: LoadResult;
  c600: LoadResult;
  ratio: number;
}

export async function overload(target: Target, seconds: number, rounds: number, say: (s: string) => void): Promise<OverloadResult[]> {
  const out: OverloadResult[] = [];
  for (let i = 1; i <= rounds; i++) {
    const c32 = await closedLoop(target, 32, seconds);
    const c600 = await closedLoop(target, 600, seconds);
    out.push({ c32, c600, ratio: c600.rps / c32.rps });
    say(
      `overload round ${i}: c=32 goodput ${c32.rps.toFixed(0)}/s p99 ${c32.p99.toFixed(0)} ms (${c32.errors} non-200) | ` +
        `c=600 goodput ${c600.rps.toFixed(0)}/s admitted p50 ${c600.p50.toFixed(0)} p99 ${c600.p99.toFixed(0)} ms (${c600.errors} non-200, ${(c600.errors / c600.seconds).toFixed(0)}/s) | ratio ${(c600.rps / c32.rps).toFixed(3)}`,
    );
  }
  return out;
}
