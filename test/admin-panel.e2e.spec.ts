import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { loadBatchConfig } from '../apps/batch/src/config/batch.config';
import { startBatch, type RunningBatch } from '../apps/batch/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { readFileSync } from 'node:fs';
import { launchChromium, screenshot, watchPage } from './support/browser';
import { tempModelRepo, type TempRepo } from './support/model-repo';
import { createTestDatabase, testQueuePrefix, TEST_REDIS_URL, type TestDatabase } from './support/test-env';

// Browser globals used inside page.evaluate / waitForFunction callbacks (they run in Chromium;
// the project's tsconfig has no DOM lib).
interface BrowserElement {
  id: string;
  textContent: string | null;
  getAttribute(name: string): string | null;
  style: { width: string };
}
declare const document: { body: { innerText: string }; activeElement: BrowserElement | null; querySelector(selector: string): BrowserElement | null };
declare const sessionStorage: { getItem(key: string): string | null; setItem(key: string, value: string): void };
declare const localStorage: { length: number };

const ADMIN_KEY = 'panel-e2e-admin-key-5f1d7c0a9b';
const DEVICES = [
  { kind: 'gpu', index: 0, name: 'Simulated H100', memoryMiB: 81559, uuid: 'GPU-sim-0' },
  { kind: 'gpu', index: 1, name: 'Simulated H100', memoryMiB: 81559, uuid: 'GPU-sim-1' },
  { kind: 'cpu', cores: 4, memoryMiB: 8192 },
];
const SCORER = {
  max_batch_size: 64,
  dynamic_batching: { max_queue_delay_us: 0, max_queue_size: 256 },
  replicas: 1,
  device: { kind: 'cpu', threads_per_replica: 1, max_inflight_per_replica: 1 },
  inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 1] }],
  outputs: [{ name: 'score', datatype: 'FP32', shape: [-1, 1] }],
};
/** Generous for a loaded 2-core machine; every wait is on DOM or API state, never a sleep. */
const WAIT_MS = 20_000;

describe('admin panel in a real browser (Chromium)', () => {
  let db: TestDatabase;
  let repo: TempRepo;
  let emptyRepo: string;
  let batch: RunningBatch;
  let gw: RunningGateway;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let watched: { errors: string[] };
  let slowBatchId: string | undefined;
  let doneBatchId = '';
  let partialBatchId = '';

  const call = async (
    method: string,
    url: string,
    body?: unknown,
    key: string | null = ADMIN_KEY,
  ): Promise<{ status: number; json: any; headers: Headers }> => {
    const headers: Record<string, string> = {};
    if (key) headers.authorization = `Bearer ${key}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(WAIT_MS) });
    const text = await res.text();
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, json, headers: res.headers };
  };
  const admin = (method: string, path: string, body?: unknown) => call(method, `${gw.url}/admin/api${path}`, body);
  const row = (id: string) => page.locator(`.device-row[data-device="${id}"]`);
  const segShare = (id: string, seg: string) => row(id).locator(`.bar-owner [data-seg="${seg}"]`);

  beforeAll(async () => {
    db = await createTestDatabase();
    repo = tempModelRepo({ scorer: { from: 'scorer', config: SCORER } });
    emptyRepo = mkdtempSync(join(tmpdir(), 'panel-batch-models-'));
    const common = {
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      QUEUE_PREFIX: testQueuePrefix(),
      LOG_LEVEL: 'silent',
      HOST: '127.0.0.1',
      TANDEM_ADMIN_KEY: ADMIN_KEY,
    };
    batch = await startBatch(
      loadBatchConfig({
        ...common,
        BATCH_PORT: '0',
        MODEL_REPOSITORY: emptyRepo,
        BATCH_ENABLE_TEST_TASKS: 'true',
        BATCH_CONCURRENCY: '2',
        SCHEDULER_AGENT: 'false',
      }),
    );
    gw = await startGateway(
      loadGatewayConfig({
        ...common,
        GATEWAY_PORT: '0',
        GATEWAY_GRPC_PORT: '0',
        MODEL_REPOSITORY: repo.dir,
        INFERENCE_CPU_THREADS: '1',
        BATCH_API_URL: batch.url,
        SCHEDULER_NODE_NAME: 'gw-node',
        SCHEDULER_DISCOVER_GPUS: 'false',
        SCHEDULER_DISCOVER_CPU: 'false',
        SCHEDULER_DECLARED_DEVICES: JSON.stringify(DEVICES),
        // A split partition, so the bars show every segment (the shipped default is online 1 / batch 0).
        SCHEDULER_DEFAULT_ONLINE_SHARE: '0.5',
        SCHEDULER_DEFAULT_BATCH_SHARE: '0.5',
      }),
    );
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
    page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    watched = watchPage(page);
  });

  afterAll(async () => {
    await browser?.close();
    // If the test failed before cancelling, don't let shutdown wait for the sleeping chunks.
    if (slowBatchId) await call('POST', `${batch.url}/v1/batches/${slowBatchId}/cancel`).catch(() => undefined);
    await gw?.app.close();
    await batch?.app.close();
    await db?.drop();
    repo?.remove();
    if (emptyRepo) rmSync(emptyRepo, { recursive: true, force: true });
  });

  it('serves the shell publicly with a strict CSP and only allow-listed files; the API needs the admin key', async () => {
    const shell = await call('GET', `${gw.url}/admin`, undefined, null);
    expect(shell.status).toBe(200);
    expect(shell.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(shell.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(shell.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(shell.headers.get('x-content-type-options')).toBe('nosniff');
    expect(String(shell.json)).toContain('<script type="module" src="/admin/app.js">');
    const js = await call('GET', `${gw.url}/admin/app.js`, undefined, null);
    expect([js.status, js.headers.get('content-type')]).toEqual([200, 'text/javascript; charset=utf-8']);
    // One bundled browser module: no CommonJS `exports`/`require`, no imports left to resolve.
    expect(String(js.json)).not.toMatch(/\brequire\(|exports\.|^import /m);
    expect(String(js.json)).toContain('tandem.adminKey');
    const css = await call('GET', `${gw.url}/admin/app.css`, undefined, null);
    expect([css.status, css.headers.get('content-type')]).toEqual([200, 'text/css; charset=utf-8']);
    expect(String(css.json)).toContain('.uplot');
    expect((await call('GET', `${gw.url}/admin/nope.js`, undefined, null)).status).toBe(404);
    // The old unbundled modules are gone from the allow-list.
    expect((await call('GET', `${gw.url}/admin/devices.js`, undefined, null)).status).toBe(404);
    // Names off the allow-list never reach the filesystem (the auth hook closes odd names first).
    expect((await call('GET', `${gw.url}/admin/%2e%2e%2fpanel-assets.js`)).status).toBe(404);
    expect((await call('GET', `${gw.url}/admin/..%2f..%2fpackage.json`)).status).toBe(404);
    expect((await call('GET', `${gw.url}/admin/.swcrc`)).status).toBe(404);
    expect((await call('GET', `${gw.url}/admin/%2e%2e%2fpanel-assets.js`, undefined, null)).status).toBe(401);

    const anon = await call('GET', `${gw.url}/admin/api/devices`, undefined, null);
    expect([anon.status, typeof anon.json.error]).toEqual([401, 'string']);
    const bad = await call('GET', `${gw.url}/admin/api/batches`, undefined, 'not-a-real-key-000000');
    expect(bad.status).toBe(401);
    const me = await admin('GET', '/whoami');
    expect(me.json).toMatchObject({ id: 'bootstrap', scopes: ['admin'] });
  });

  it('validates the models and batches endpoints', async () => {
    const models = await admin('GET', '/models');
    expect(models.status).toBe(200);
    expect(models.json.models).toEqual([
      expect.objectContaining({
        name: 'scorer',
        replicas: 1,
        ongoing: 0,
        queueDepth: 0,
        autoscaled: false,
        versions: [expect.objectContaining({ version: '1', state: 'ready' })],
      }),
    ]);
    expect((await admin('PUT', '/models/scorer/limits', { min_replicas: 3, max_replicas: 2 })).json.error).toMatch(/min_replicas must be ≤ max_replicas/);
    expect((await admin('PUT', '/models/scorer/limits', { min_replicas: 1 })).status).toBe(400);
    expect((await admin('PUT', '/models/nope/limits', { min_replicas: 1, max_replicas: 2 })).status).toBe(404);
    expect((await admin('GET', '/batches/not-a-uuid')).status).toBe(400);
    expect((await admin('GET', '/batches?state=bogus')).status).toBe(400);
    expect((await admin('POST', '/batches/00000000-0000-4000-8000-000000000000/explode')).status).toBe(400);
    const missing = await admin('GET', '/batches/00000000-0000-4000-8000-000000000000');
    expect(missing.status).toBe(404);
    expect(missing.json.error).toMatch(/not found/);
  });

  it('logs in, shows the seeded devices, changes a partition and drains a device (audited)', async () => {
    await page.goto(`${gw.url}/admin`);
    await page.locator('#login-key').waitFor();
    await screenshot(page, 'login', 'docs/screenshots/login.png');

    await page.fill('#login-key', 'wrong-key-wrong-key-123');
    await page.click('#login-form button[type="submit"]');
    await page.locator('#login-error', { hasText: 'Sign-in failed' }).waitFor();

    const inferOnly = await admin('POST', '/keys', { name: 'svc-infer', scopes: ['infer'] });
    expect(inferOnly.status).toBe(201);
    await page.fill('#login-key', inferOnly.json.key);
    await page.click('#login-form button[type="submit"]');
    await page.locator('#login-error', { hasText: "lacks the 'admin' scope" }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('tandem.adminKey'))).toBeNull();

    await page.fill('#login-key', ADMIN_KEY);
    await page.click('#login-form button[type="submit"]');
    await page.locator('#who-name', { hasText: 'bootstrap admin' }).waitFor();
    expect(await page.evaluate(() => document.body.innerText)).not.toContain(ADMIN_KEY);
    expect(await page.evaluate(() => sessionStorage.getItem('tandem.adminKey'))).toBe(ADMIN_KEY);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);

    for (const id of ['gw-node/gpu0', 'gw-node/gpu1', 'gw-node/cpu']) await row(id).waitFor();
    expect(await page.locator('.node[data-node="gw-node"] .device-row').count()).toBe(3);
    expect(await segShare('gw-node/gpu0', 'online').getAttribute('data-share')).toBe('0.500');
    // The batch's latency cost on the gateway's own device: no online traffic yet to measure a
    // p99 against; the gateway watches its CPU device only.
    await row('gw-node/cpu').locator('.dev-cost', { hasText: 'online p99: not enough traffic yet' }).waitFor({ timeout: 5_000 });
    expect(await row('gw-node/gpu0').locator('.dev-cost').textContent()).toBe('');
    expect(await segShare('gw-node/gpu0', 'batch').getAttribute('data-share')).toBe('0.500');

    // Some holders so the bars and the allocations view have something to show.
    const online = await admin('POST', '/allocations', {
      kind: 'online',
      share: 0.25,
      memoryMiB: 20480,
      devices: ['gw-node/gpu1'],
      holder: 'replica scorer/1#0',
    });
    expect(online.status).toBe(201);
    const borrowed = await admin('POST', '/allocations', { kind: 'batch', share: 0.6, memoryMiB: 16384, devices: ['gw-node/gpu1'], holder: 'batch-worker w1' });
    expect(borrowed.status).toBe(201);
    const worker = await admin('POST', '/allocations', { kind: 'batch', share: 0.5, devices: ['gw-node/cpu'], holder: 'batch-worker w2' });
    expect(worker.status).toBe(201);
    await page.waitForFunction(() => {
      const seg = document.querySelector('.device-row[data-device="gw-node/gpu1"] .bar-use [data-seg="batch"]');
      return seg !== null && seg.getAttribute('data-share') !== '0.000';
    });
    // A batch allocation on the CPU device: the cost line says a batch is present there.
    await row('gw-node/cpu').locator('.dev-cost', { hasText: 'online p99: not enough traffic yet · batch present' }).waitFor({ timeout: 5_000 });

    // Refreshes update in place: the same rows at the same positions after the next poll.
    const boxesBefore = await page
      .locator('.device-row')
      .evaluateAll((els) => els.map((e) => JSON.stringify((e as unknown as { getBoundingClientRect(): object }).getBoundingClientRect())));
    await row('gw-node/gpu0').evaluate((e) => (e as unknown as { setAttribute(n: string, v: string): void }).setAttribute('data-probe', 'same-node'));
    const stamp = await page.locator('#status').textContent();
    await page.waitForFunction((s) => document.querySelector('#status')?.textContent !== s, stamp);
    const boxesAfter = await page
      .locator('.device-row')
      .evaluateAll((els) => els.map((e) => JSON.stringify((e as unknown as { getBoundingClientRect(): object }).getBoundingClientRect())));
    expect(boxesAfter).toEqual(boxesBefore);
    expect(await row('gw-node/gpu0').getAttribute('data-probe')).toBe('same-node');

    // Keyboard: the action is a real button; the dialog takes focus and Escape cancels it.
    const gpu0 = row('gw-node/gpu0');
    await gpu0.locator('[data-action="partition"]').focus();
    await page.keyboard.press('Enter');
    await page.locator('#dlg-online').waitFor();
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('dlg-online');
    await page.keyboard.press('Escape');
    await page.locator('#dlg').waitFor({ state: 'hidden' });

    // A partition over 1 is refused in the dialog, before any request.
    await gpu0.locator('[data-action="partition"]').click();
    await page.fill('#dlg-online', '0.8');
    await page.fill('#dlg-batch', '0.4');
    await page.click('#dlg button[type="submit"]');
    await page.locator('#dlg-error', { hasText: 'online + batch must be ≤ 1' }).waitFor();

    await page.fill('#dlg-batch', '0.3');
    await page.fill('#dlg-online', '0.7');
    await page.click('#dlg button[type="submit"]');
    await page.locator('#dlg-summary', { hasText: 'to online 70% / batch 30%' }).waitFor();
    await screenshot(page, 'partition-confirm', 'docs/screenshots/partition-dialog.png');
    await page.click('#dlg button[type="submit"]');
    await page.locator('#dlg').waitFor({ state: 'hidden' });

    // The bar changes in place…
    await page.waitForFunction(
      () => document.querySelector('.device-row[data-device="gw-node/gpu0"] .bar-owner [data-seg="online"]')?.getAttribute('data-share') === '0.700',
    );
    expect(await segShare('gw-node/gpu0', 'batch').getAttribute('data-share')).toBe('0.300');
    expect(await segShare('gw-node/gpu0', 'online').evaluate((el) => (el as unknown as BrowserElement).style.width)).toBe('70%');
    // …the change persisted…
    const dev = await admin('GET', '/devices/gw-node/gpu0');
    expect(dev.json.partition).toEqual({ deviceId: 'gw-node/gpu0', online: 0.7, batch: 0.3, batchMayBorrow: true });
    // …and was audited under the key that made it.
    const audit = await admin('GET', '/audit?limit=20');
    const entry = audit.json.entries.find((e: any) => e.action === 'partition.update' && e.target === 'device:gw-node/gpu0');
    expect(entry).toMatchObject({ actor: 'key:bootstrap (bootstrap admin (TANDEM_ADMIN_KEY))' });

    // Drain gpu1 from the panel (confirmation first).
    await row('gw-node/gpu1').locator('[data-action="drain"]').click();
    await page.locator('#dlg-summary', { hasText: 'No new allocations' }).waitFor();
    await page.click('#dlg button[type="submit"]');
    await row('gw-node/gpu1').locator('.badge', { hasText: 'drained' }).waitFor();
    expect((await admin('GET', '/devices/gw-node/gpu1')).json.drained).toBe(true);
    await row('gw-node/gpu1').locator('[data-action="drain"]', { hasText: 'Undrain' }).waitFor();
    await screenshot(page, 'devices', 'docs/screenshots/devices.png');

    // API errors reach the operator: in the dialog that caused them, and in the banner for refreshes.
    await page.route('**/admin/api/devices/gw-node/cpu/partition', (r) =>
      r.fulfill({ status: 409, contentType: 'application/json', body: '{"error":"partition change refused (injected)"}' }),
    );
    await row('gw-node/cpu').locator('[data-action="partition"]').click();
    await page.click('#dlg button[type="submit"]');
    await page.click('#dlg button[type="submit"]');
    await page.locator('#dlg-error', { hasText: 'partition change refused (injected)' }).waitFor();
    await page.keyboard.press('Escape');
    await page.unroute('**/admin/api/devices/gw-node/cpu/partition');
    await page.route('**/admin/api/nodes', (r) =>
      r.fulfill({ status: 503, contentType: 'application/json', body: '{"error":"ledger unavailable (injected)"}' }),
    );
    await page.locator('#banner.visible', { hasText: 'devices: ledger unavailable (injected)' }).waitFor();
    await page.unroute('**/admin/api/nodes');
    await page.locator('#banner.visible').waitFor({ state: 'hidden' });
  });

  it("shows allocations and sets a model's replica range", async () => {
    await page.click('#tab-allocations');
    await page.locator('#view-allocations tr[data-holder="batch-worker w1"]').waitFor();
    const holders = await page.locator('#view-allocations tbody .col-holder').allTextContents();
    expect(holders.sort()).toEqual(expect.arrayContaining(['batch-worker w1', 'batch-worker w2', 'replica scorer/1#0']));
    const w1 = await page.locator('#view-allocations tr[data-holder="batch-worker w1"] .col-owned').allTextContents();
    expect(w1.length).toBeGreaterThan(0);
    await screenshot(page, 'allocations', 'docs/screenshots/allocations.png');

    // A few real inferences so the latency columns have data.
    for (let i = 0; i < 20; i++) {
      const r = await call('POST', `${gw.url}/v2/models/scorer/infer`, { inputs: [{ name: 'x', shape: [2, 1], datatype: 'FP32', data: [i, i + 1] }] });
      expect(r.status).toBe(200);
    }
    await page.click('#tab-models');
    const scorer = page.locator('#view-models tr[data-model="scorer"]');
    await scorer.locator('.col-limits', { hasText: 'fixed' }).waitFor();
    await scorer.locator('button').click();
    await page.fill('#dlg-min_replicas', '1');
    await page.fill('#dlg-max_replicas', '3');
    await page.click('#dlg button[type="submit"]');
    await page.locator('#dlg-summary', { hasText: '1–3 replicas' }).waitFor();
    await page.click('#dlg button[type="submit"]');
    await scorer.locator('.col-limits', { hasText: '1–3' }).waitFor();
    const models = await admin('GET', '/models');
    expect(models.json.models[0]).toMatchObject({ name: 'scorer', autoscaled: true, minReplicas: 1, maxReplicas: 3, p99ComputeMs: expect.any(Number) });
    expect(models.json.models[0].p99ComputeMs).toBeGreaterThan(0);
    await scorer.locator('.col-p99c', { hasText: 'ms' }).waitFor();
    await screenshot(page, 'models', 'docs/screenshots/models.png');
  });

  it('shows batches with progress and cancels a running one from the panel', async () => {
    const submit = (body: unknown) => call('POST', `${batch.url}/v1/batches`, body);
    const done = await submit({ task: 'score', items: Array.from({ length: 2000 }, (_, i) => i), chunkSize: 250, reducer: 'sum' });
    expect(done.status).toBe(201);
    // Submitted before the slow one, so its chunks are not stuck behind sleeping ones. Its first chunk fails for good; `continue` settles the other items.
    const failing = Array.from({ length: 20 }, (_, n) => ({ n, failAttempts: n < 5 ? 1000 : 0 }));
    const partial = await submit({ task: 'test-probe', items: failing, chunkSize: 5, reducer: 'sum', maxAttempts: 1, failurePolicy: 'continue' });
    expect(partial.status).toBe(201);
    doneBatchId = done.json.id;
    partialBatchId = partial.json.id;
    // Half the chunks answer at once, the rest sleep (abortably) 30 s, 2 at a time: the batch
    // sits at ≥ 50 % and running for a minute unless cancelled.
    const items = Array.from({ length: 40 }, (_, n) => ({ n, sleepMs: n < 20 ? 0 : 30_000 }));
    const slow = await submit({ task: 'test-probe', items, chunkSize: 4, reducer: 'sum' });
    expect(slow.status).toBe(201);
    const id = slow.json.id as string;
    slowBatchId = id;

    await page.click('#tab-batches');
    const slowRow = page.locator(`#view-batches tr[data-batch="${id}"]`);
    await page.locator(`#view-batches tr[data-batch="${done.json.id}"][data-state="succeeded"]`).waitFor();
    await page.locator(`#view-batches tr[data-batch="${partial.json.id}"] .col-errors`, { hasText: '5 failed' }).waitFor();
    await page.locator(`#view-batches tr[data-batch="${id}"][data-state="running"]`).waitFor();
    await page.waitForFunction((bid) => Number(document.querySelector(`tr[data-batch="${bid}"] .progress`)?.getAttribute('aria-valuenow')) >= 50, id);
    await screenshot(page, 'batches', 'docs/screenshots/batches.png');

    // Pause and resume from the panel.
    await slowRow.locator('[data-action="pause"]').click();
    await page.locator('#dlg-summary', { hasText: 'Workers stop taking its chunks' }).waitFor();
    await page.click('#dlg button[type="submit"]');
    await page.locator(`#view-batches tr[data-batch="${id}"][data-state="paused"]`).waitFor();
    expect((await call('GET', `${batch.url}/v1/batches/${id}`)).json.state).toBe('paused');
    await slowRow.locator('[data-action="resume"]').click();
    await page.click('#dlg button[type="submit"]');
    await page.locator(`#view-batches tr[data-batch="${id}"]:is([data-state="running"], [data-state="queued"])`).waitFor();
    expect(await slowRow.locator('[data-action="cancel"]').isEnabled()).toBe(true);

    await slowRow.locator('[data-action="cancel"]').click();
    await page.locator('#dlg-summary', { hasText: 'cannot be undone' }).waitFor();
    await page.click('#dlg button[type="submit"]');
    await page.locator(`#view-batches tr[data-batch="${id}"][data-state="cancelled"]`).waitFor();
    expect(await slowRow.locator('[data-action="cancel"]').isDisabled()).toBe(true);
    const after = await call('GET', `${batch.url}/v1/batches/${id}`);
    expect(after.json.state).toBe('cancelled');
  });

  it('charts the sampled history: device shares and memory with a revocation marked, model load and p99, batch progress and cost', async () => {
    // A revocation on gpu0 (online 0.7 / batch 0.3 since the partition change): a batch holder
    // borrows online's idle share, then an online request takes it back (after the grace, by force).
    const lender = await admin('POST', '/allocations', { kind: 'batch', share: 0.5, memoryMiB: 4096, devices: ['gw-node/gpu0'], holder: 'batch-worker w3' });
    expect([lender.status, lender.json.borrowed]).toEqual([201, true]);
    const online = await admin('POST', '/allocations', {
      kind: 'online',
      share: 0.7,
      memoryMiB: 8192,
      devices: ['gw-node/gpu0'],
      holder: 'replica scorer/1#1',
    });
    expect([online.status, online.json.preempted]).toEqual([201, 1]);

    const history = await admin('GET', '/history?window=900');
    expect(history.status).toBe(200);
    expect(history.json).toMatchObject({ windowS: 900, sampleS: 3, sloP99Ms: null, sampleError: null });
    expect(history.json.devices.map((d: any) => d.id)).toEqual(['gw-node/cpu', 'gw-node/gpu0', 'gw-node/gpu1']);
    expect(history.json.revocations).toEqual([expect.objectContaining({ deviceId: 'gw-node/gpu0', holder: 'batch-worker w3' })]);
    expect((await admin('GET', '/history?window=5000')).json.error).toMatch(/window must be ≤ 900 s/);

    const chart = (key: string) => page.locator(`.chart[data-chart="${key}"]`);
    type Summary = Record<string, { n: number; max: number | null; last: number | null }>;
    const series = async (key: string): Promise<Summary> => JSON.parse((await chart(key).getAttribute('data-series')) ?? '{}');
    // Waits on the chart's own data until it shows what the system did (the sampler runs every 3 s).
    const chartShows = (key: string, label: string, atLeast: number) =>
      page.waitForFunction(
        ([k, l, min]) => {
          const s = JSON.parse(document.querySelector(`.chart[data-chart="${k}"]`)?.getAttribute('data-series') ?? '{}');
          return (s[l]?.max ?? -1) >= min;
        },
        [key, label, atLeast] as const,
      );

    await page.click('#tab-devices');
    await chartShows('device:gw-node/gpu0', 'online', 0.7);
    await page.waitForFunction(() => Number(document.querySelector('.chart[data-chart="device:gw-node/gpu0"]')?.getAttribute('data-marks')) >= 1);
    // The online holder's memory (the lender's was held too briefly to be sure a sample saw it).
    await chartShows('device:gw-node/gpu0', 'memory MiB', 8192);
    expect(await chart('device:gw-node/gpu0').locator('canvas').count()).toBe(1);
    // gpu1 still holds the allocations made above: 0.6 batch (0.1 of it borrowed), 36 GiB.
    await chartShows('device:gw-node/gpu1', 'batch', 0.6);
    const gpu1 = await series('device:gw-node/gpu1');
    expect(gpu1.borrowed?.max).toBeCloseTo(0.1, 3);
    expect(gpu1['memory MiB']?.max).toBe(20480 + 16384);
    expect(Number(await chart('device:gw-node/gpu1').getAttribute('data-points'))).toBeGreaterThanOrEqual(2);
    await page.locator('.device-charts').scrollIntoViewIfNeeded();
    await screenshot(page, 'device-charts', 'docs/screenshots/device-charts.png');
    for (const r of [online, lender]) await admin('DELETE', `/allocations/${r.json.groupId}`);

    await page.click('#tab-models');
    await chartShows('model-load:scorer', 'requests/s', 0.1);
    await chartShows('model-load:scorer', 'replicas', 1);
    const p99 = await series('model-p99:scorer');
    expect(p99['p99 ms']?.n).toBeGreaterThanOrEqual(1);
    expect(p99['p99 ms']?.max).toBeGreaterThan(0);
    expect(p99['SLO ms']?.n).toBe(0); // no SLO configured in this test
    await page.locator('.model-charts').scrollIntoViewIfNeeded();
    await screenshot(page, 'model-charts', 'docs/screenshots/model-charts.png');

    // The batch page: from the list's link.
    await page.click('#tab-batches');
    await page.click(`#view-batches tr[data-batch="${doneBatchId}"] a.batch-id`);
    await page.locator(`#view-batch[data-batch="${doneBatchId}"][data-state="succeeded"]`).waitFor();
    expect(page.url()).toContain(`#batch/${doneBatchId}`);
    await chartShows(`batch-progress:${doneBatchId}`, 'settled', 2000);
    const view = (await call('GET', `${batch.url}/v1/batches/${doneBatchId}`)).json;
    const cost = await series(`batch-cost:${doneBatchId}`);
    expect([cost['owned device-s']?.last, cost['borrowed device-s']?.last]).toEqual([view.deviceSeconds.owned, view.deviceSeconds.borrowed]);
    expect(await page.locator('#view-batch [data-stat="items"]').textContent()).toBe('2,000 / 0 / 2,000');
    expect(await page.locator('#view-batch [data-action="cancel"]').isDisabled()).toBe(true);
    expect(await page.locator('#view-batch [data-download="errors"]').isDisabled()).toBe(true);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#view-batch [data-download="results"]')]);
    expect(download.suggestedFilename()).toBe(`batch-${doneBatchId}-results.ndjson`);
    const lines = readFileSync((await download.path())!, 'utf8')
      .trim()
      .split('\n');
    expect(lines).toHaveLength(2000);
    expect(JSON.parse(lines[7]!)).toEqual({ index: 7, output: expect.anything() });
    await screenshot(page, 'batch-page', 'docs/screenshots/batch-page.png');

    // A batch with failed chunks: its errors listed and downloadable.
    await page.goto(`${gw.url}/admin#batch/${partialBatchId}`);
    await page.locator('#view-batch .batch-errors tbody tr .col-error').first().waitFor();
    expect(await page.locator('#view-batch .batch-errors tbody .col-items').allTextContents()).toEqual(['0–4']);
    expect(await page.locator('#view-batch [data-stat="items"]').textContent()).toBe('15 / 5 / 20');
    const [errors] = await Promise.all([page.waitForEvent('download'), page.click('#view-batch [data-download="errors"]')]);
    expect(JSON.parse(readFileSync((await errors.path())!, 'utf8'))).toEqual([expect.objectContaining({ chunk: 0, firstItem: 0, lastItem: 4, attempts: 1 })]);
    // The results proxy relays the batch app's answers for ids it does not know.
    expect((await admin('GET', '/batches/00000000-0000-4000-8000-000000000000/results')).status).toBe(404);
  });

  it('the Grafana dashboard queries only metrics the gateway and the batch app export', async () => {
    const dashboard = JSON.parse(readFileSync('deploy/grafana/tandem-dashboard.json', 'utf8'));
    const exprs: string[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) k === 'expr' && typeof x === 'string' ? exprs.push(x) : walk(x);
    };
    walk(dashboard.panels);
    walk(dashboard.annotations);
    const variables: string[] = dashboard.templating.list.map((t: { definition: string }) => /^label_values\((\w+),/.exec(t.definition)?.[1] ?? t.definition);
    expect(exprs.length).toBeGreaterThanOrEqual(20);

    const exported = new Set<string>();
    for (const url of [`${gw.url}/metrics`, `${batch.url}/metrics`]) {
      const r = await call('GET', url);
      expect(r.status).toBe(200);
      for (const [, name, type] of String(r.json).matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
        exported.add(name!);
        if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(`${name}${suffix}`);
        if (type === 'summary') for (const suffix of ['_sum', '_count']) exported.add(`${name}${suffix}`);
      }
    }
    expect(exported.has('tandem_inference_requests_total')).toBe(true);
    expect(exported.has('tandem_batch_items_processed_total')).toBe(true);
    const unknown: string[] = [];
    for (const e of exprs) {
      const names = promqlMetricNames(e);
      expect(names.length, e).toBeGreaterThan(0);
      unknown.push(...names.filter((n) => !exported.has(n)).map((n) => `${n} (in ${e})`));
    }
    unknown.push(...variables.filter((n) => !exported.has(n)));
    expect(unknown).toEqual([]);
  });

  it('shows the audit log and ran without page errors', async () => {
    await page.click('#tab-audit');
    await page.locator('#view-audit tr[data-action="model.limits"]').waitFor();
    const actions = await page.locator('#view-audit tbody .col-action').allTextContents();
    expect(actions).toEqual(expect.arrayContaining(['partition.update', 'device.drain', 'model.limits']));
    const who = await page.locator('#view-audit tr[data-action="partition.update"] .col-actor').textContent();
    expect(who).toContain('key:bootstrap');
    await screenshot(page, 'audit', 'docs/screenshots/audit.png');

    // A key revoked mid-session sends the panel back to the login form.
    await page.evaluate(() => sessionStorage.setItem('tandem.adminKey', 'revoked-key-revoked-key'));
    await page.locator('#login-key').waitFor();
    expect(watched.errors).toEqual([]);
  });
});

const PROMQL_WORDS = new Set([
  'sum',
  'max',
  'min',
  'avg',
  'count',
  'by',
  'without',
  'on',
  'ignoring',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'rate',
  'irate',
  'increase',
  'changes',
  'histogram_quantile',
  'topk',
  'bottomk',
  'clamp_min',
  'clamp_max',
]);

/** The metric names a PromQL expression reads (strings, label matchers, ranges and grouping labels removed). */
function promqlMetricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, '');
  return [...bare.matchAll(/(?<![\w.])[a-zA-Z_:][\w:]*/g)].map((m) => m[0]).filter((w) => !PROMQL_WORDS.has(w));
}
