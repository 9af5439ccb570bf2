import { afterEach, describe, expect, it, vi } from 'vitest';
import { HealthService, READINESS_CACHE_MS } from './health.service';
import type { ReadinessCheck } from './health.types';

function check(name: string, impl: () => Promise<void>): ReadinessCheck & { calls: number } {
  const c = {
    name,
    calls: 0,
    check: () => {
      c.calls++;
      return impl();
    },
  };
  return c;
}

describe('HealthService', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('concurrent callers share one round; the answer is reused until it is older than the cache period', async () => {
    vi.useFakeTimers({ toFake: ['performance', 'setTimeout', 'clearTimeout'] });
    const db = check('postgres', async () => undefined);
    const h = new HealthService([db]);
    const answers = await Promise.all(Array.from({ length: 50 }, () => h.readiness()));
    expect(answers.every((a) => a.ready)).toBe(true);
    expect(db.calls).toBe(1);
    vi.advanceTimersByTime(READINESS_CACHE_MS - 1);
    await h.readiness();
    expect(db.calls).toBe(1);
    vi.advanceTimersByTime(2);
    await h.readiness();
    expect(db.calls).toBe(2);
    expect(h.checkRounds()).toBe(2);
  });

  it('reports a failing component by name only, never its error message', async () => {
    const h = new HealthService([
      check('queue(redis)', () => Promise.reject(new Error('connect ECONNREFUSED 10.0.0.7:6379'))),
      check('postgres', async () => undefined),
    ]);
    const r = await h.readiness();
    expect(r).toEqual({ ready: false, checks: { 'queue(redis)': 'failing', postgres: 'ok' } });
  });

  it('does not call a check again while its previous call has not settled', async () => {
    vi.useFakeTimers({ toFake: ['performance', 'setTimeout', 'clearTimeout'] });
    let release: () => void = () => undefined;
    const db = check('postgres', () => new Promise<void>((r) => (release = r)));
    const h = new HealthService([db]);
    const first = h.readiness();
    await vi.advanceTimersByTimeAsync(2_000); // the round's timeout
    expect((await first).checks.postgres).toBe('failing');
    await vi.advanceTimersByTimeAsync(READINESS_CACHE_MS);
    expect((await h.readiness()).checks.postgres).toBe('failing');
    expect(db.calls).toBe(1);
    release();
    await vi.advanceTimersByTimeAsync(READINESS_CACHE_MS);
    const again = h.readiness();
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect((await again).checks.postgres).toBe('ok');
    expect(db.calls).toBe(2);
  });

  it('is not ready while draining, whatever the checks say', async () => {
    const h = new HealthService([check('postgres', async () => undefined)]);
    h.markDraining();
    expect(await h.readiness()).toEqual({ ready: false, checks: { postgres: 'ok', shutdown: 'draining' } });
  });
});
