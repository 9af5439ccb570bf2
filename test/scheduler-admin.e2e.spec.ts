import { request as httpRequest, type IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register } from 'prom-client';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { waitFor } from './support/scheduler-harness';
import { createTestDatabase, type TestDatabase } from './support/test-env';
import { gatewayEnv } from './support/gateway-harness';

const DEVICES = [
  { kind: 'gpu', index: 0, name: 'Simulated H100', memoryMiB: 81559, uuid: 'GPU-sim-0' },
  { kind: 'gpu', index: 1, name: 'Simulated H100', memoryMiB: 81559, uuid: 'GPU-sim-1' },
  { kind: 'cpu', cores: 4, memoryMiB: 8192 },
];

describe('admin API over a real socket', () => {
  let db: TestDatabase;
  let gw: RunningGateway;
  let repo: string;

  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> => {
    const res = await fetch(`${gw.url}/admin/api${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, json: await res.json() };
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    repo = mkdtempSync(join(tmpdir(), 'empty-models-'));
    gw = await startGateway(
      loadGatewayConfig({
        ...gatewayEnv(db.url),
        MODEL_REPOSITORY: repo,
        SCHEDULER_NODE_NAME: 'gw-node',
        SCHEDULER_DISCOVER_GPUS: 'false',
        SCHEDULER_DISCOVER_CPU: 'false',
        SCHEDULER_DECLARED_DEVICES: JSON.stringify(DEVICES),
        SCHEDULER_REAPER_MS: '100',
      }),
    );
  });

  afterAll(async () => {
    await gw?.app.close();
    await db?.drop();
    rmSync(repo, { recursive: true, force: true });
  });

  it('lists the node and its declared devices with partitions', async () => {
    const nodes = await call('GET', '/nodes');
    expect(nodes.status).toBe(200);
    expect(nodes.json.nodes.map((n: any) => [n.name, n.status])).toEqual([['gw-node', 'alive']]);
    const devices = await call('GET', '/devices?kind=gpu');
    expect(devices.json.devices.map((d: any) => [d.id, d.source, d.gpuUuid])).toEqual([
      ['gw-node/gpu0', 'declared', 'GPU-sim-0'],
      ['gw-node/gpu1', 'declared', 'GPU-sim-1'],
    ]);
    const parts = await call('GET', '/partitions');
    expect(parts.json.partitions).toHaveLength(3);
    // The shipped default: online owns the device, batch borrows what online leaves idle.
    expect(parts.json.partitions[0]).toEqual({ deviceId: 'gw-node/cpu', online: 1, batch: 0, batchMayBorrow: true });
  });

  it('changes a partition (audited) and rejects partitions over 1', async () => {
    const ok = await call('PUT', '/devices/gw-node/gpu0/partition', { online: 0.7, batch: 0.3 });
    expect(ok).toEqual({ status: 200, json: { deviceId: 'gw-node/gpu0', online: 0.7, batch: 0.3, batchMayBorrow: true } });
    const bad = await call('PUT', '/devices/gw-node/gpu0/partition', { online: 0.7, batch: 0.4 });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/online \+ batch must be ≤ 1/);
    expect((await call('PUT', '/devices/gw-node/gpu0/partition', { online: -0.1, batch: 0.4 })).status).toBe(400);
    expect((await call('PUT', '/devices/gw-node/gpu0/partition', { online: 0.5 })).status).toBe(400);
    expect((await call('PUT', '/devices/gw-node/gpu0/partition', '{nope')).status).toBe(400);
    const unknown = await call('PUT', '/devices/gw-node/gpu9/partition', { online: 0.5, batch: 0.5 });
    expect(unknown.status).toBe(404);
    expect(unknown.json).toEqual({ error: 'unknown device "gw-node/gpu9"' });
    const audit = await call('GET', '/audit?limit=10');
    expect(audit.json.entries).toHaveLength(1);
    // The actor comes from the auth seam (adminActor): 'admin' before API keys, the key or 'anonymous' after.
    expect(audit.json.entries[0]).toMatchObject({
      actor: expect.stringMatching(/^(admin|anonymous|key:)/),
      action: 'partition.update',
      target: 'device:gw-node/gpu0',
    });
  });

  it('drains and undrains a device; the audit log pages', async () => {
    const d = await call('POST', '/devices/gw-node/gpu1/drain');
    expect([d.status, d.json.drained]).toEqual([200, true]);
    const refused = await call('POST', '/allocations', { kind: 'batch', share: 0.1, devices: ['gw-node/gpu1'] });
    expect(refused.status).toBe(503);
    const u = await call('POST', '/devices/gw-node/gpu1/undrain');
    expect([u.status, u.json.drained]).toEqual([200, false]);
    const p1 = await call('GET', '/audit?limit=2');
    expect(p1.json.entries.map((e: any) => e.action)).toEqual(['device.undrain', 'device.drain']);
    expect(p1.json.next).toEqual(expect.any(String));
    const p2 = await call('GET', `/audit?limit=2&before=${p1.json.next}`);
    expect(p2.json.entries.map((e: any) => e.action)).toEqual(['partition.update']);
    expect(p2.json.next).toBeNull();
    expect((await call('GET', '/audit?limit=0')).status).toBe(400);
    expect((await call('GET', '/audit?before=x')).status).toBe(400);
  });

  it('allocates, lists and releases; the grant carries what a process needs', async () => {
    const a = await call('POST', '/allocations', { kind: 'online', share: 0.5, memoryMiB: 4096, deviceKind: 'gpu', holder: 'ops' });
    expect(a.status).toBe(201);
    expect(a.json).toMatchObject({ kind: 'online', holder: 'ops', borrowed: false, cudaVisibleDevices: expect.stringMatching(/^GPU-sim-[01]$/) });
    const cpu = await call('POST', '/allocations', { kind: 'batch', share: 0.5, deviceKind: 'cpu' });
    expect(cpu.json.threads).toBe(2);
    const list = await call('GET', '/allocations?kind=online');
    expect(list.json.allocations).toEqual([expect.objectContaining({ holder: 'ops', share: 0.5, memoryMiB: 4096, state: 'active' })]);
    const dev = await call('GET', `/devices/${a.json.devices[0].deviceId}`);
    expect(dev.json.used).toMatchObject({ online: 0.5, memoryMiB: 4096, allocations: 1 });
    expect((await call('DELETE', `/allocations/${a.json.groupId}`)).json).toEqual({ released: 1 });
    expect((await call('DELETE', `/allocations/${cpu.json.groupId}`)).json).toEqual({ released: 1 });
    expect((await call('DELETE', `/allocations/${cpu.json.groupId}`)).status).toBe(404);
    expect((await call('DELETE', '/allocations/not-a-uuid')).status).toBe(400);
    expect((await call('GET', '/allocations')).json.allocations).toEqual([]);
  });

  it('rejects bad allocation requests with 4xx and an error field', async () => {
    const cases: [unknown, number][] = [
      [{ kind: 'batch', share: 0 }, 400],
      [{ kind: 'batch', share: -0.5 }, 400],
      [{ kind: 'batch', share: 3, deviceKind: 'gpu' }, 400],
      [{ kind: 'batch', share: 1.5 }, 400],
      [{ kind: 'later', share: 0.5 }, 400],
      [{ kind: 'batch', share: 0.5, devices: ['gw-node/gpu7'] }, 404],
      [{ kind: 'batch', share: 0.5, extra: true }, 400],
      [{ kind: 'batch', share: '0.5' }, 400],
    ];
    for (const [body, status] of cases) {
      const r = await call('POST', '/allocations', body);
      expect([JSON.stringify(body), r.status]).toEqual([JSON.stringify(body), status]);
      expect(typeof r.json.error).toBe('string');
    }
    const big = await call('POST', '/allocations', { kind: 'batch', share: 0.5, holder: 'x'.repeat(20_000) });
    expect(big.status).toBe(413);
  });

  /** Sends headers and `chunks` of a body that never ends; resolves with the answer (which must not wait for the end). */
  const unfinished = (
    method: string,
    path: string,
    headers: Record<string, string | number>,
    chunks: Buffer[],
  ): Promise<{ status: number; body: string; written: number }> =>
    new Promise((done, fail) => {
      let written = 0;
      const req = httpRequest(`${gw.url}/admin/api${path}`, { method, headers: { 'content-type': 'application/json', ...headers } }, (res: IncomingMessage) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => {
          req.destroy();
          done({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString(), written });
        });
      });
      req.on('error', (e) => (written > 0 ? undefined : fail(e)));
      req.flushHeaders();
      // Keep writing slowly after the cap: only an answer sent while bytes still arrive ends this.
      const timer = setInterval(() => {
        const c = chunks.shift();
        if (!c) return clearInterval(timer);
        written += c.length;
        req.write(c);
      }, 20);
      req.on('close', () => clearInterval(timer));
    });

  it('caps admin bodies at 16 KiB as they arrive: a declared or a streamed, never-ending body gets 413 {"error"}', async () => {
    // A declared length over the cap is refused before any byte of the body is sent.
    const declared = await unfinished('PUT', '/devices/gw-node/cpu/partition', { 'content-length': 20_000 }, []);
    expect([declared.status, JSON.parse(declared.body), declared.written]).toEqual([413, { error: expect.stringMatching(/too large/i) }, 0]);
    // A chunked body that never ends: 4 KiB pieces; the answer comes once the cap is passed.
    const pieces = Array.from({ length: 64 }, (_, i) => Buffer.from(i === 0 ? `{"online":0.5,"batch":0.5,"pad":"${'x'.repeat(4096 - 37)}` : 'x'.repeat(4096)));
    const streamed = await unfinished('POST', '/allocations', { 'transfer-encoding': 'chunked' }, pieces);
    expect([streamed.status, JSON.parse(streamed.body)]).toEqual([413, { error: expect.stringMatching(/too large/i) }]);
    expect(streamed.written).toBeGreaterThan(16 * 1024);
    expect(streamed.written).toBeLessThan(64 * 4096);
    // Under the cap the body is read and validated as usual.
    const under = await call('PUT', '/models/none/limits', { min_replicas: 1, max_replicas: 2, pad: 'x'.repeat(10_000) });
    expect([under.status, under.json.error]).toEqual([400, expect.stringMatching(/^invalid limits: /)]);
  });

  it('registers scheduler metrics on the default registry', async () => {
    // Each reaper pass refreshes the gauges; wait for one that saw the device.
    const text = await waitFor(async () => {
      const t = await register.metrics();
      return t.includes('device="gw-node/gpu0"') ? t : null;
    }, 'share gauges');
    expect(text).toMatch(/tandem_scheduler_device_share_used\{device="gw-node\/gpu0",node="gw-node",kind="online"\} 0/);
    expect(text).toMatch(/tandem_scheduler_preemptions_total/);
    expect(text).toMatch(/tandem_scheduler_lease_expiries_total/);
  });
});
