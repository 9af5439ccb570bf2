import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runChaos } from '../scripts/chaos/chaos-run';

// The short version of `npm run chaos` (100k items, 5 kills): private Postgres and Redis, so the
// restart and FLUSHALL here never touch the servers other test files use. Every fault must land
// on the running batch and prove what it hit, or the run fails.
describe('chaos (short run)', () => {
  it('a batch survives worker SIGKILLs, a Redis FLUSHALL and a Postgres restart exactly; the gateway keeps serving and drains on SIGTERM', async () => {
    const logs: string[] = [];
    // 120 chunks of ≥1 s on 4 worker slots: ≥30 s of batch, longer than the faults take to land and be proven.
    const r = await runChaos({
      items: 12_000,
      chunkSize: 100,
      chunkSleepMs: 1_000,
      workerKills: 2,
      flushRedis: true,
      restartPostgres: true,
      distRoot: resolve(process.cwd(), 'dist'),
      log: (s) => logs.push(s),
    });
    const context = `${logs.join('\n')}\n${JSON.stringify(r)}`;
    expect(r.state, context).toBe('succeeded');
    expect(r.gotSum).toBe('575928002000');
    expect(r.exact).toBe(true);

    // Each killed worker held at least one chunk at the kill; each of those stalled and ran again.
    expect(r.workerKills).toBe(2);
    expect(r.kills, context).toHaveLength(2);
    for (const k of r.kills) {
      expect(k.pendingBefore, context).toBeGreaterThanOrEqual(8);
      expect(k.held.length, context).toBeGreaterThanOrEqual(1);
      expect(k.rerun, context).toBe(true);
    }
    // FLUSHALL lost queued jobs, and the reconciler put the lost chunks back.
    expect(r.redisFlushes).toBe(1);
    expect(r.flush!.pendingBefore, context).toBeGreaterThan(0);
    expect(r.flush!.queuedBefore, context).toBeGreaterThan(0);
    expect(r.flush!.queuedAfter, context).toBe(0);
    expect(r.flush!.requeued, context).toBeGreaterThan(0);
    expect(r.flush!.addedAfter, context).toBeGreaterThan(0);
    // Postgres went away with chunks still pending.
    expect(r.postgresRestarts).toBe(1);
    expect(r.restart!.pendingBefore, context).toBeGreaterThanOrEqual(2);

    expect(r.online.ok).toBeGreaterThan(10);
    expect(r.online.failedOtherwise).toBe(0);
    // Enough of the 30 must still be open at the SIGTERM for the drain to prove anything.
    expect(r.sigterm.inflight + r.sigterm.answeredBefore).toBe(30);
    expect(r.sigterm.inflight, context).toBeGreaterThanOrEqual(10);
    expect(r.sigterm).toMatchObject({ failed: 0, exitCode: 0 });
  }, 240_000);
});
