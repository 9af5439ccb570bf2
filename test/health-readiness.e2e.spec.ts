import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresReadiness } from '@tandem/persistence';
import { HealthService } from '@tandem/shared';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { gatewayEnv } from './support/gateway-harness';
import { tempModelRepo, type TempRepo } from './support/model-repo';
import { createTestDatabase, type TestDatabase } from './support/test-env';

/** Wraps the gateway's Postgres check to count calls and the most running at once. */
function instrument(gw: RunningGateway, delayMs: () => number): { calls: number; maxConcurrent: number } {
  const probe = gw.app.get(PostgresReadiness);
  const real = probe.check.bind(probe);
  const stats = { calls: 0, maxConcurrent: 0 };
  let running = 0;
  probe.check = async () => {
    stats.calls++;
    stats.maxConcurrent = Math.max(stats.maxConcurrent, ++running);
    try {
      const d = delayMs();
      if (d > 0) await new Promise((r) => setTimeout(r, d));
      await real();
    } finally {
      running--;
    }
  };
  return stats;
}

describe('open readiness endpoints: cached, shared, no internals (real sockets)', () => {
  let db: TestDatabase;
  let repo: TempRepo;
  let gw: RunningGateway;
  let broken: RunningGateway;

  beforeAll(async () => {
    db = await createTestDatabase();
    repo = tempModelRepo({ scorer: { from: 'scorer', config: { max_batch_size: 8, inputs: [{ name: 'x', shape: [-1, 1] }] } } });
    gw = await startGateway(loadGatewayConfig({ ...gatewayEnv(db.url), MODEL_REPOSITORY: repo.dir }));
    // Its queue store points at a port where nothing listens.
    broken = await startGateway(loadGatewayConfig({ ...gatewayEnv(db.url), MODEL_REPOSITORY: repo.dir, REDIS_URL: 'redis://127.0.0.1:1' }));
  });

  afterAll(async () => {
    await Promise.all([gw?.app.close(), broken?.app.close()]);
    await db?.drop();
    repo?.remove();
  });

  it('500 concurrent GET /v2/health/ready: all 200, one database check at a time, one round per second at most', async () => {
    const stats = instrument(gw, () => 50);
    const health = gw.app.get(HealthService);
    const roundsBefore = health.checkRounds();
    const t0 = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 500 }, async () => {
        const res = await fetch(`${gw.url}/v2/health/ready`);
        return { status: res.status, body: await res.json() };
      }),
    );
    const elapsedS = (performance.now() - t0) / 1000;
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(answers[0]!.body).toEqual({ ready: true, checks: { postgres: 'ok', 'queue(redis)': 'ok', models: 'ok' } });
    expect(stats.maxConcurrent).toBe(1);
    // A round runs only when the last one's answer is older than 1 s: the burst costs
    // at most one round per started second, never one per request.
    const rounds = health.checkRounds() - roundsBefore;
    expect(rounds).toBeGreaterThanOrEqual(0);
    expect(rounds).toBeLessThanOrEqual(Math.ceil(elapsedS) + 1);
    expect(stats.calls).toBe(rounds);
    expect(stats.calls).toBeLessThan(20);
  });

  it('a database check that hangs is not called again until it settles; callers get 503 naming only the component', async () => {
    let hang = 4_000;
    const stats = instrument(broken, () => hang);
    const bodies: string[] = [];
    // Three waves over ~4 s: the first round times out at 2 s while the call still hangs.
    for (let wave = 0; wave < 3; wave++) {
      const res = await Promise.all(Array.from({ length: 100 }, () => fetch(`${broken.url}/v2/health/ready`)));
      expect(res.map((r) => r.status).filter((s) => s !== 503)).toEqual([]);
      bodies.push(...(await Promise.all(res.map((r) => r.text()))));
      await new Promise((r) => setTimeout(r, 1_100));
    }
    hang = 0;
    expect(stats.maxConcurrent).toBe(1);
    expect(stats.calls).toBeLessThanOrEqual(2);
    const last = JSON.parse(bodies.at(-1)!) as object;
    expect(last).toEqual({
      ready: false,
      error: expect.stringMatching(/^not ready: /),
      checks: expect.objectContaining({ 'queue(redis)': 'failing', models: 'ok' }),
    });
    for (const b of new Set(bodies)) {
      expect(b).toMatch(/queue\(redis\)/);
      // No host, port, URL or driver message reaches an unauthenticated caller.
      expect(b).not.toMatch(/127\.0\.0\.1|localhost|redis:\/\/|postgres:\/\/|ECONNREFUSED|connect|within/i);
    }
  });

  it('live answers without touching any dependency', async () => {
    const stats = instrument(gw, () => 0);
    const res = await Promise.all(Array.from({ length: 200 }, () => fetch(`${gw.url}/v2/health/live`)));
    expect(res.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
    expect(await res[0]!.json()).toEqual({ live: true });
    expect(stats.calls).toBe(0);
  });
});
