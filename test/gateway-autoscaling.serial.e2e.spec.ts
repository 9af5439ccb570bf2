import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { AutoscalerService } from '../apps/gateway/src/autoscaler/autoscaler.service';
import { InferenceService } from '../apps/gateway/src/inference/inference.service';
import { tempModelRepo, type TempRepo } from './support/model-repo';
import { createTestDatabase, type TestDatabase } from './support/test-env';
import { gatewayEnv } from './support/gateway-harness';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('replica autoscaling under real load', () => {
  let db: TestDatabase;
  let repo: TempRepo;
  let gw: RunningGateway;
  const replicas = (): number => gw.app.get(InferenceService).replicas('cls_auto');

  /** Closed-loop load from a child process: `clients` concurrent requesters until stopped. */
  function load(clients: number): { stop: () => Promise<number> } {
    const child = spawn(process.execPath, [resolve(process.cwd(), 'test/support/load-gen.mjs'), gw.url, 'cls_auto', String(clients), '1'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const done = new Promise<void>((r) => child.on('exit', () => r()));
    return {
      stop: async () => {
        child.kill('SIGTERM');
        await done;
        const stats = JSON.parse(out) as { ok: number; failed: number };
        expect(stats.ok).toBeGreaterThan(0);
        return stats.failed;
      },
    };
  }

  /** Samples the replica count every 100 ms for `ms`. */
  async function trace(ms: number): Promise<number[]> {
    const out: number[] = [];
    for (let t = 0; t < ms; t += 100) {
      out.push(replicas());
      await sleep(100);
    }
    return out;
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    repo = tempModelRepo({
      cls_auto: {
        from: 'ppocr_cls',
        config: {
          max_batch_size: 4,
          replicas: 1,
          device: { threads_per_replica: 1 },
          autoscaling: { min_replicas: 1, max_replicas: 3, target_ongoing_requests: 1, upscale_delay_s: 0.5, downscale_delay_s: 1.5, window_s: 1.5 },
          inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, 48, 192] }],
        },
      },
    });
    gw = await startGateway(
      loadGatewayConfig({
        ...gatewayEnv(db.url),
        MODEL_REPOSITORY: repo.dir,
        AUTOSCALER_TICK_MS: '100',
      }),
    );
  });

  afterAll(async () => {
    await gw?.app.close();
    await db?.drop();
    repo?.remove();
  });

  it('steps load up and down: scales up within seconds, back down when idle, no failed request', async () => {
    expect(replicas()).toBe(1);
    const heavy = load(8); // far above 3 replicas × target 1
    const up = await trace(5_000);
    const failures = await heavy.stop();
    expect(failures).toBe(0);
    const reached = up.indexOf(3);
    expect(reached).toBeGreaterThan(0);
    expect(reached * 100).toBeLessThanOrEqual(4_500); // within seconds even on a loaded 2-core box

    const down = await trace(7_000);
    expect(down.at(-1)).toBe(1);
    // one step at a time on the way down
    for (let i = 1; i < down.length; i++) expect(down[i - 1]! - down[i]!).toBeLessThanOrEqual(1);
    const events = gw.app.get(AutoscalerService).events.filter((e) => e.model === 'cls_auto');
    expect(events.some((e) => e.to > e.from)).toBe(true);
    expect(events.some((e) => e.to < e.from)).toBe(true);
  });

  it('holds a constant replica count under steady load (no oscillation)', async () => {
    const steady = load(2);
    // Settle: 2 closed-loop clients at target 1 ongoing per replica want 2 replicas. Wait for that
    // count (a fixed 4 s was too short when the suite loads both cores), then it must hold.
    for (let t = 0; replicas() !== 2 && t < 20_000; t += 100) await sleep(100);
    await sleep(1_000);
    const settled = await trace(6_000);
    const failures = await steady.stop();
    expect(failures).toBe(0);
    // On failure, say what the scaler saw: each decision with the mean ongoing requests behind it.
    const seen = gw.app
      .get(AutoscalerService)
      .events.filter((e) => e.model === 'cls_auto')
      .map((e) => `${e.from}->${e.to} at load ${e.load.toFixed(2)}`);
    expect(new Set(settled).size, `trace ${settled.join(',')}; decisions ${seen.join('; ')}`).toBe(1);
    expect(settled[0]).toBeGreaterThanOrEqual(1);
  });
});
