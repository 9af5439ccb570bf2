import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runChaos } from '../scripts/chaos/chaos-run';

// The short version of `npm run chaos` (100k items, 5 kills): private Postgres and Redis, so the
// restart and FLUSHALL here never touch the servers other test files use.
describe('chaos (short run)', () => {
  it('a batch survives worker SIGKILLs, a Redis FLUSHALL and a Postgres restart exactly; the gateway keeps serving and drains on SIGTERM', async () => {
    const logs: string[] = [];
    const r = await runChaos({
      items: 10_000,
      chunkSize: 500,
      chunkSleepMs: 150,
      workerKills: 2,
      flushRedis: true,
      restartPostgres: true,
      distRoot: resolve(process.cwd(), 'dist'),
      log: (s) => logs.push(s),
    });
    expect(r.state, logs.join('\n')).toBe('succeeded');
    expect(r.gotSum).toBe('333283335000');
    expect(r.exact).toBe(true);
    expect(r.workerKills).toBe(2);
    expect(r.redisFlushes).toBe(1);
    expect(r.postgresRestarts).toBe(1);
    expect(r.online.ok).toBeGreaterThan(10);
    expect(r.online.failedOtherwise).toBe(0);
    expect(r.sigterm).toEqual({ inflight: 30, failed: 0, exitCode: 0 });
  }, 240_000);
});
