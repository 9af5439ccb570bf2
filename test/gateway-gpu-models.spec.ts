import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { gatewayEnv } from './support/gateway-harness';
import { createTestDatabase, type TestDatabase } from './support/test-env';

// GPU models in the shipped gateway (device ledger, three declared 16 000 MiB GPUs, simulated
// CUDA): each way a GPU model cannot load fails it loudly, over HTTP and in the log, and holds
// nothing in the ledger; "fallback": "cpu" is the only way onto the CPU.

const CLS = realpathSync(resolve(process.cwd(), 'models/ppocr_cls/1/model.onnx'));
const GPU_MIB = 16_000;

type Line = { level: number; msg: string; context?: string };

describe('GPU models in the gateway', () => {
  let db: TestDatabase;
  let repo: string;
  let gw: RunningGateway;
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Line);
      done();
    },
  });
  const model = (name: string, device: Record<string, unknown>): void => {
    mkdirSync(join(repo, name, '1'), { recursive: true });
    symlinkSync(CLS, join(repo, name, '1', 'model.onnx'));
    writeFileSync(
      join(repo, name, 'config.json'),
      JSON.stringify({ max_batch_size: 4, inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, 48, 192] }], device: { kind: 'gpu', ...device } }),
    );
  };
  const get = async (path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const r = await fetch(`${gw.url}${path}`);
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    repo = mkdtempSync(join(tmpdir(), 'tandem-gpu-gw-'));
    model('toobig', { memory_mib: 20_000 }); // more than any GPU here has
    model('toobig_cpu', { memory_mib: 20_000, fallback: 'cpu' });
    model('oom', { memory_mib: 100 }); // the simulated session needs 258 MiB
    model('measured', {});
    gw = await startGateway(
      loadGatewayConfig(
        gatewayEnv(db.url, {
          MODEL_REPOSITORY: repo,
          LOG_LEVEL: 'info',
          SCHEDULER_NODE_NAME: `gpugw-${process.pid}`,
          SCHEDULER_DISCOVER_GPUS: 'false',
          SCHEDULER_DISCOVER_CPU: 'false',
          SCHEDULER_DECLARED_DEVICES: JSON.stringify(
            [0, 1, 2].map((i) => ({ kind: 'gpu', index: i, uuid: `GPU-sim-${i}`, name: 'Simulated GPU', memoryMiB: GPU_MIB })),
          ),
          TANDEM_SIMULATED_GPU: 'true',
        }),
      ),
      { logDestination: sink },
    );
  });

  afterAll(async () => {
    await gw?.app.close();
    await db?.drop();
    rmSync(repo, { recursive: true, force: true });
  });

  it('a GPU model no GPU can hold fails its load: reason in readiness, metadata, index and log', async () => {
    const why =
      'toobig v1 needs a GPU (device.kind "gpu") and no GPU allocation is available on this node with 20000 MiB free; set device.fallback "cpu" in its config.json to serve it on the CPU instead';
    expect(await get('/v2/models/toobig/ready')).toEqual({ status: 400, body: { name: 'toobig', ready: false, reason: why } });
    const meta = await get('/v2/models/toobig');
    expect(meta.status).toBe(503);
    expect(meta.body.error).toContain(why);
    const index = (await (await fetch(`${gw.url}/v2/repository/index`, { method: 'POST' })).json()) as {
      name: string;
      state: string;
      reason: string;
      device?: unknown;
    }[];
    expect(index.find((e) => e.name === 'toobig')).toEqual({
      name: 'toobig',
      version: '1',
      state: 'UNAVAILABLE',
      reason: why,
      device: { kind: 'gpu', memory_mib: 20_000, memory_source: 'declared' },
    });
    expect(lines.filter((l) => l.level === 50 && l.context === 'InferenceService').map((l) => l.msg)).toContain(`model toobig/1 failed to load: ${why}`);
  });

  it('with "fallback": "cpu" the same model serves on the CPU', async () => {
    expect((await get('/v2/models/toobig_cpu/ready')).body).toEqual({ name: 'toobig_cpu', ready: true });
    const r = await fetch(`${gw.url}/v2/models/toobig_cpu/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data: new Array(3 * 48 * 192).fill(0.5) }] }),
    });
    expect(r.status).toBe(200);
  });

  it('a model whose session needs more than its allocation holds fails with CUDA out of memory, and gives the allocation back', async () => {
    const ready = await get('/v2/models/oom/ready');
    expect(ready.status).toBe(400);
    expect(String(ready.body.reason)).toMatch(
      /CUDA failure 2: out of memory ; GPU=\d ; hostname=simulated ; .*the session needs 258 MiB, the allocation holds 100 MiB/,
    );
    const allocs = (
      (await (await fetch(`${gw.url}/admin/api/allocations`)).json()) as { allocations: { holder: string; memoryMiB: number; deviceId: string }[] }
    ).allocations;
    expect(allocs.filter((a) => a.holder.includes('replica:oom:'))).toEqual([]);
    expect(allocs.filter((a) => a.holder.includes('replica:toobig'))).toEqual([]);
  });

  it('a model that declares no memory is measured at load and shows the figure', async () => {
    expect((await get('/v2/models/measured/ready')).body).toEqual({ name: 'measured', ready: true });
    expect((await get('/v2/models/measured')).body.device).toEqual({ kind: 'gpu', memory_mib: 258, memory_source: 'measured' });
  });
});
