import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { InferenceService } from '../apps/gateway/src/inference/inference.service';
import { tempModelRepo, type TempRepo } from './support/model-repo';
import { createTestDatabase, type TestDatabase } from './support/test-env';
import { gatewayEnv } from './support/gateway-harness';

// The scorer is a node model: its config declares the backend and the whole signature.
const scorerConfig = (replicas: number): Record<string, unknown> => ({
  backend: 'node',
  max_batch_size: 64,
  replicas,
  inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 1] }],
  outputs: [{ name: 'score', datatype: 'FP32', shape: [-1, 1] }],
});

describe('model control (Triton repository extension) while serving', () => {
  let db: TestDatabase;
  let repo: TempRepo;
  let gw: RunningGateway;
  const post = (path: string, body?: unknown): Promise<Response> =>
    fetch(`${gw.url}${path}`, {
      method: 'POST',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  /** Closed-loop JSON traffic on `scorer` until stopped; returns [ok, failed, versions seen]. */
  function traffic(): { stop: () => Promise<{ ok: number; failed: string[]; versions: Set<string> }> } {
    let on = true;
    const failed: string[] = [];
    const versions = new Set<string>();
    let ok = 0;
    const loops = Array.from({ length: 4 }, async () => {
      while (on) {
        const r = await post('/v2/models/scorer/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: [0.5] }] });
        const b = (await r.json()) as { model_version?: string; outputs?: { data: number[] }[]; error?: string };
        if (r.status === 200 && Math.abs(b.outputs![0]!.data[0]! - Math.tanh(0.5)) < 1e-6) {
          ok++;
          versions.add(b.model_version!);
        } else failed.push(`${r.status} ${b.error}`);
      }
    });
    return {
      stop: async () => {
        on = false;
        await Promise.all(loops);
        return { ok, failed, versions };
      },
    };
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    repo = tempModelRepo({ scorer: { from: 'scorer', config: scorerConfig(1) } });
    gw = await startGateway(
      loadGatewayConfig({
        ...gatewayEnv(db.url),
        MODEL_REPOSITORY: repo.dir,
      }),
    );
  });

  afterAll(async () => {
    await gw?.app.close();
    await db?.drop();
    repo?.remove();
  });

  it('index lists every version with its state', async () => {
    const res = await post('/v2/repository/index');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual([{ name: 'scorer', version: '1', state: 'READY', reason: '' }]);
    expect((await post('/v2/repository/index', { ready: 'yes' })).status).toBe(400);
  });

  it('replica changes, a new version and a broken config: no failed request, the old version keeps serving', async () => {
    const inference = (): InferenceService => gw.app.get(InferenceService);
    const load = traffic();
    await new Promise((r) => setTimeout(r, 200));

    // 1 → 3 replicas in place
    writeFileSync(join(repo.dir, 'scorer', 'config.json'), JSON.stringify(scorerConfig(3)));
    expect((await post('/v2/repository/models/scorer/load')).status).toBe(200);
    expect(inference().replicas('scorer')).toBe(3);

    // a new version appears and becomes the default
    mkdirSync(join(repo.dir, 'scorer', '2'));
    copyFileSync(join(repo.dir, 'scorer', '1', 'model.ts'), join(repo.dir, 'scorer', '2', 'model.ts'));
    expect((await post('/v2/repository/models/scorer/load')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 200));

    // a broken config fails the load and changes nothing
    writeFileSync(join(repo.dir, 'scorer', 'config.json'), JSON.stringify({ max_batch_size: 'lots' }));
    const bad = await post('/v2/repository/models/scorer/load');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/failed to load model 'scorer'.*max_batch_size/);
    await new Promise((r) => setTimeout(r, 200));

    const { ok, failed, versions } = await load.stop();
    expect(failed).toEqual([]);
    expect(ok).toBeGreaterThan(20);
    expect([...versions].sort()).toEqual(['1', '2']);
    const idx = (await (await post('/v2/repository/index')).json()) as { version: string; state: string }[];
    expect(idx.map((e) => `${e.version}:${e.state}`)).toEqual(['1:READY', '2:READY']);
    expect(((await (await fetch(`${gw.url}/v2/models/scorer`)).json()) as { versions: string[] }).versions).toEqual(['1', '2']);
  });

  it('unload drains and makes the model unavailable; load brings it back; unknown models are 404', async () => {
    writeFileSync(join(repo.dir, 'scorer', 'config.json'), JSON.stringify(scorerConfig(1)));
    expect((await post('/v2/repository/models/scorer/unload')).status).toBe(200);
    expect((await fetch(`${gw.url}/v2/models/scorer/ready`)).status).not.toBe(200);
    const r = await post('/v2/models/scorer/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: [0.5] }] });
    expect(r.status).toBe(503);
    expect(((await (await post('/v2/repository/index')).json()) as { state: string }[]).every((e) => e.state === 'UNAVAILABLE')).toBe(true);
    expect((await post('/v2/repository/models/scorer/load')).status).toBe(200);
    expect((await fetch(`${gw.url}/v2/models/scorer/ready`)).status).toBe(200);
    expect((await post('/v2/repository/models/nope/load')).status).toBe(404);
    expect((await post('/v2/repository/models/nope/unload')).status).toBe(404);
  });
});
