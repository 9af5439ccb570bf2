import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceView } from '@tandem/scheduler';
import { launchChromium, screenshot } from './support/browser';
import { gatewayEnv } from './support/gateway-harness';
import { FAKE_NVIDIA_SMI_DIR } from './support/simulated-gpu-stack';
import { freePort, spawnNode, type Spawned } from './support/processes';
import { createTestDatabase, type TestDatabase } from './support/test-env';

// Issue 17's acceptance: the shipped gateway (dist/, run `npm run build` first) started with the
// fake nvidia-smi first on PATH, as on an 8×H100 node with MIG on GPU 0.
const MAIN = resolve(process.cwd(), 'dist/apps/gateway/src/main.js');
const NODE = 'h100-node';

interface Started {
  gw: Spawned;
  url: string;
}

async function start(dbUrl: string, repo: string, extra: Record<string, string> = {}): Promise<Started> {
  const port = await freePort();
  const gw = spawnNode(MAIN, {
    ...gatewayEnv(dbUrl, { MODEL_REPOSITORY: repo, GATEWAY_PORT: String(port), GATEWAY_GRPC_PORT: String(await freePort()), LOG_LEVEL: 'info' }),
    PATH: `${FAKE_NVIDIA_SMI_DIR}:${process.env.PATH ?? ''}`,
    SCHEDULER_NODE_NAME: NODE,
    SCHEDULER_DISCOVER_CPU: 'false',
    ...extra,
  });
  await gw.waitFor(/gateway REST listening/, 30_000);
  return { gw, url: `http://127.0.0.1:${port}` };
}

async function stop(s: Started | undefined): Promise<void> {
  if (!s || s.gw.proc.exitCode !== null) return;
  s.gw.proc.kill('SIGTERM');
  await s.gw.exited;
}

describe('the gateway on a (fake) 8×H100 node with MIG on GPU 0', () => {
  let db: TestDatabase;
  let repo: string;
  let s: Started;

  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> => {
    const res = await fetch(`${s.url}/admin/api${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: await res.json() };
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    repo = mkdtempSync(join(tmpdir(), 'empty-models-'));
    s = await start(db.url, repo);
  });

  afterAll(async () => {
    await stop(s);
    await db?.drop();
    rmSync(repo, { recursive: true, force: true });
  });

  it('lists 7 whole GPUs and 3 MIG devices, each with its memory; GPU 0 is not schedulable as a whole', async () => {
    const r = await call('GET', '/devices?kind=gpu');
    expect(r.status).toBe(200);
    const devices = r.json.devices as DeviceView[];
    expect(devices.map((d) => [d.id, d.migProfile, d.memoryMiB, d.used.memoryFreeMiB])).toEqual([
      [`${NODE}/gpu0-mig0`, '3g.40gb', 38912, 38912],
      [`${NODE}/gpu0-mig1`, '2g.20gb', 19456, 19456],
      [`${NODE}/gpu0-mig2`, '2g.20gb', 19456, 19456],
      ...[1, 2, 3, 4, 5, 6, 7].map((i) => [`${NODE}/gpu${i}`, null, 81559, 81559]),
    ]);
    const mig = devices[0]!;
    expect(mig).toMatchObject({
      localId: 'gpu0-mig0',
      model: 'NVIDIA H100 80GB HBM3 MIG 3g.40gb',
      gpuIndex: 0,
      gpuUuid: expect.stringMatching(/^MIG-[0-9a-f-]{36}$/),
      parentGpuUuid: expect.stringMatching(/^GPU-[0-9a-f-]{36}$/),
      migDeviceIndex: 0,
      computeFraction: 0.429,
      source: 'discovered',
    });
    expect(devices[3]).toMatchObject({ localId: 'gpu1', migMode: 'Disabled', parentGpuUuid: null, migProfile: null, computeFraction: 1 });
    const nodes = await call('GET', '/nodes');
    expect(nodes.json.nodes[0].info).toMatchObject({ warnings: [], migDevices: 3 });
  });

  it('the admin panel shows the 10 schedulable GPUs, MIG instances with profile, compute fraction and memory', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
      await page.goto(`${s.url}/admin#devices`); // auth is off here: no sign-in
      const rows = page.locator('.device-row[data-device]');
      await page.locator(`.device-row[data-device="${NODE}/gpu7"]`).waitFor({ timeout: 20_000 });
      const ids = await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-device')));
      expect(ids.filter((id) => id?.startsWith(`${NODE}/gpu`)).sort()).toEqual(
        [`${NODE}/gpu0-mig0`, `${NODE}/gpu0-mig1`, `${NODE}/gpu0-mig2`, ...[1, 2, 3, 4, 5, 6, 7].map((i) => `${NODE}/gpu${i}`)].sort(),
      );
      const mig = await page.locator(`.device-row[data-device="${NODE}/gpu0-mig0"] .dev-model`).textContent();
      expect(mig).toBe('MIG 3g.40gb · 0.43 of GPU 0');
      expect(await page.locator(`.device-row[data-device="${NODE}/gpu0-mig0"] .dev-model`).getAttribute('title')).toMatch(
        /^NVIDIA H100 80GB HBM3 MIG 3g\.40gb · MIG-[0-9a-f-]{36} · on GPU-[0-9a-f-]{36}$/,
      );
      const whole = await page.locator(`.device-row[data-device="${NODE}/gpu1"] .dev-model`).textContent();
      expect(whole).toBe('GPU · NVIDIA H100 80GB HBM3');
      expect(await page.locator(`.device-row[data-device="${NODE}/gpu0-mig0"]`).textContent()).toContain('38.0 GiB');
      await screenshot(page, 'devices-mig', 'docs/screenshots/devices-mig.png');
    } finally {
      await browser.close();
    }
  });

  it("refuses allocations over a device's memory with 409; the grant pins a MIG device by its UUID", async () => {
    const mig = `${NODE}/gpu0-mig0`;
    const over = await call('POST', '/allocations', { kind: 'online', share: 0.5, memoryMiB: 40_000, devices: [mig] });
    expect(over.status).toBe(409);
    expect(over.json).toEqual({
      error: expect.stringMatching(/^memory over-commit refused for online share 0.5 with 40000 MiB: .*needs 40000 MiB, device has 38912 MiB in all/),
    });

    const a = await call('POST', '/allocations', { kind: 'online', share: 0.5, memoryMiB: 30_000, devices: [mig], holder: 'replica-a' });
    expect(a.status).toBe(201);
    const uuid = a.json.devices[0].gpuUuid as string;
    expect(uuid).toMatch(/^MIG-/);
    expect(a.json.cudaVisibleDevices).toBe(uuid);
    expect(a.json.devices[0]).toMatchObject({ deviceId: mig, memoryMiB: 30_000, gpuIndex: 0 });
    // Half the share is free, 8 912 MiB of memory: 10 000 MiB is over, 8 000 fits.
    const second = await call('POST', '/allocations', { kind: 'online', share: 0.25, memoryMiB: 10_000, devices: [mig] });
    expect(second.status).toBe(409);
    expect(second.json.error).toMatch(/needs 10000 MiB, 8912 MiB free/);
    const b = await call('POST', '/allocations', { kind: 'batch', share: 0.25, memoryMiB: 8_000, devices: [mig] });
    expect(b.status).toBe(201);
    expect((await call('GET', `/devices/${mig}`)).json.used).toMatchObject({ memoryMiB: 38_000, memoryFreeMiB: 912 });
    // Share exhausted is still a 503 (wait and retry), not a memory conflict.
    const full = await call('POST', '/allocations', { kind: 'online', share: 0.75, memoryMiB: 1, devices: [mig] });
    expect(full.status).toBe(503);
    expect(full.json.error).toMatch(/online partition 1 has 0.5 free/);
    for (const g of [a.json.groupId, b.json.groupId]) expect((await call('DELETE', `/allocations/${g}`)).status).toBe(200);

    // The GPU constraints of the admin API: only MIG instances, or exactly the GPUs named.
    const onlyMig = await call('POST', '/allocations', { kind: 'batch', share: 1, memoryMiB: 1_000, deviceKind: 'gpu', mig: 'only' });
    expect(onlyMig.status).toBe(201);
    expect(onlyMig.json.devices[0].deviceId).toMatch(/\/gpu0-mig\d$/);
    const noMig = await call('POST', '/allocations', { kind: 'batch', share: 1, memoryMiB: 1_000, deviceKind: 'gpu', mig: 'exclude' });
    expect(noMig.json.devices[0].deviceId).toMatch(/\/gpu[1-7]$/);
    const named = await call('POST', '/allocations', { kind: 'batch', share: 1, deviceKind: 'gpu', gpus: ['5'] });
    expect(named.json.devices[0].deviceId).toBe(`${NODE}/gpu5`);
    expect((await call('POST', '/allocations', { kind: 'batch', share: 1, deviceKind: 'gpu', mig: 'sometimes' })).status).toBe(400);
    for (const g of [onlyMig.json.groupId, noMig.json.groupId, named.json.groupId]) expect((await call('DELETE', `/allocations/${g}`)).status).toBe(200);

    // No whole GPU has 90 000 MiB: a conflict on every candidate.
    const huge = await call('POST', '/allocations', { kind: 'batch', share: 0.1, memoryMiB: 90_000, deviceKind: 'gpu' });
    expect(huge.status).toBe(409);
  });
});

describe('the gateway where nvidia-smi cannot reach the driver', () => {
  it("starts without GPUs and reports nvidia-smi's message as a node warning", async () => {
    const db = await createTestDatabase();
    const repo = mkdtempSync(join(tmpdir(), 'empty-models-'));
    let s: Started | undefined;
    try {
      s = await start(db.url, repo, { FAKE_NVIDIA_SMI_MODE: 'driver-down' });
      const devices = await (await fetch(`${s.url}/admin/api/devices?kind=gpu`)).json();
      expect(devices).toEqual({ devices: [] });
      const nodes = (await (await fetch(`${s.url}/admin/api/nodes`)).json()) as { nodes: { info: { warnings: string[] } }[] };
      expect(nodes.nodes[0].info.warnings).toEqual([
        expect.stringMatching(/^nvidia-smi --query-gpu failed \(exit 9\): NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver/),
      ]);
    } finally {
      await stop(s);
      await db.drop();
      rmSync(repo, { recursive: true, force: true });
    }
  });
});
