import { closedLoop, type LoadResult, type Target } from './support/http-load';
import { cpuSeconds as cpuS } from './support/proc-stat';

/**
 * Part of `npm run bench:online` for issue 20: goodput under heavy overload. 600 closed-loop
 * clients that retry at once after a 503 (the worst case: no client backs off), then 600 that
 * wait the Retry-After second, against 32 clients, back to back, `rounds` times; goodput is
 * answered-200 images/s, latency is that of admitted (200) requests only.
 */
export interface OverloadResult {
  c32: LoadResult;
  c600: LoadResult;
  ratio: number;
  /** 600 clients that wait Retry-After (1 s) after a 503, as HTTP asks. */
  c600Backoff: LoadResult;
}

export async function overload(target: Target, seconds: number, rounds: number, say: (s: string) => void, gatewayPid: number): Promise<OverloadResult[]> {
  const out: OverloadResult[] = [];
  // CPU per second of wall time, gateway and load generator: on a 2-core box the clients' own
  // retry storm competes with the replica for the same cores.
  const cpu = async (c: number, backoffOn503Ms = 0): Promise<{ r: LoadResult; note: string }> => {
    const [g0, l0] = [cpuS(gatewayPid), cpuS(process.pid)];
    const r = await closedLoop(target, c, seconds, { backoffOn503Ms });
    return {
      r,
      note: `cpu/s gateway ${((cpuS(gatewayPid) - g0) / r.seconds).toFixed(2)}, load generator ${((cpuS(process.pid) - l0) / r.seconds).toFixed(2)}`,
    };
  };
  for (let i = 1; i <= rounds; i++) {
    const { r: c32, note: n32 } = await cpu(32);
    const { r: c600, note: n600 } = await cpu(600);
    const { r: c600Backoff, note: nb } = await cpu(600, 1000);
    out.push({ c32, c600, ratio: c600.rps / c32.rps, c600Backoff });
    say(
      `overload round ${i}: c=32 goodput ${c32.rps.toFixed(0)}/s p99 ${c32.p99.toFixed(0)} ms (${c32.errors} non-200; ${n32}) | ` +
        `c=600 goodput ${c600.rps.toFixed(0)}/s admitted p50 ${c600.p50.toFixed(0)} p99 ${c600.p99.toFixed(0)} ms (${c600.errors} non-200, ${(c600.errors / c600.seconds).toFixed(0)}/s; ${n600}) | ratio ${(c600.rps / c32.rps).toFixed(3)} | ` +
        `c=600 honouring Retry-After: goodput ${c600Backoff.rps.toFixed(0)}/s p99 ${c600Backoff.p99.toFixed(0)} ms (${c600Backoff.errors} non-200; ${nb}) ratio ${(c600Backoff.rps / c32.rps).toFixed(3)}`,
    );
  }
  return out;
}
