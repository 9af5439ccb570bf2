import { request as httpRequest, Agent } from 'node:http';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBatch, type RunningBatch } from '../apps/batch/src/bootstrap';
import { loadBatchConfig } from '../apps/batch/src/config/batch.config';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { createTestDatabase, testQueuePrefix, TEST_REDIS_URL, type TestDatabase } from './support/test-env';

const ADMIN_KEY = 'test-admin-key-routes-0123456789';
const BATCH_ID = '00000000-0000-4000-8000-000000000001';
const agent = new Agent({ keepAlive: true, maxSockets: 8 });
/** A real file (uploaded with the admin key in beforeAll), so a bypass of its routes would show. */
let fileId = 'file-000000000000000000000000';

interface Raw {
  status: number;
  body: string;
}

/**
 * The request line exactly as written: fetch (WHATWG URL) would resolve `/./`, `/../` and
 * `%2e` before sending, hiding precisely the variants the router must not be fooled by.
 */
function raw(base: string, method: string, path: string, key?: string, body?: unknown): Promise<Raw> {
  const u = new URL(base);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((ok, fail) => {
    const req = httpRequest(
      {
        agent,
        host: u.hostname,
        port: u.port,
        method,
        path,
        headers: {
          ...(key ? { authorization: `Bearer ${key}` } : {}),
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => ok({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', fail);
      },
    );
    req.on('error', fail);
    req.end(payload);
  });
}

const pct = (c: string, lower = false): string => {
  const h = c.charCodeAt(0).toString(16).padStart(2, '0');
  return `%${lower ? h : h.toUpperCase()}`;
};

/**
 * Spellings of `path` that a raw-URL check and the router could read differently. `decoded`:
 * the router decodes it back to the route itself, so the answer must be exactly the route's.
 */
function variants(path: string): { path: string; decoded: boolean; kind: string }[] {
  const segs = path.split('/').slice(1);
  const out: { path: string; decoded: boolean; kind: string }[] = [];
  const join = (s: string[]): string => `/${s.join('/')}`;
  segs.forEach((seg, i) => {
    const a = [...segs];
    a[i] = pct(seg[0]!) + seg.slice(1);
    out.push({ path: join(a), decoded: true, kind: `encoded first letter of segment ${i}` });
    const b = [...segs];
    b[i] = [...seg].map((c, j) => pct(c, j % 2 === 1)).join('');
    out.push({ path: join(b), decoded: true, kind: `segment ${i} fully encoded, mixed hex case` });
  });
  out.push({ path: `${path}?next=/v2/health/ready`, decoded: true, kind: 'query naming an open route' });
  out.push({ path: `/${path}`, decoded: false, kind: 'leading double slash' });
  out.push({ path: join([segs[0]!, '', ...segs.slice(1)]), decoded: false, kind: 'inner double slash' });
  out.push({ path: `${path}//`, decoded: false, kind: 'trailing double slash' });
  out.push({ path: `${path}/`, decoded: false, kind: 'trailing slash' });
  out.push({ path: join([segs[0]!, '.', ...segs.slice(1)]), decoded: false, kind: 'dot segment' });
  out.push({ path: join([segs[0]!, 'x', '..', ...segs.slice(1)]), decoded: false, kind: 'dot-dot segment' });
  out.push({ path: join([segs[0]!, '%2e', ...segs.slice(1)]), decoded: false, kind: 'encoded dot segment' });
  out.push({ path: join(['v2', 'health', '%2e%2e', '..', ...segs]), decoded: false, kind: 'from an open route, encoded dot-dot' });
  out.push({ path: `/${segs[0]}%2F${segs.slice(1).join('/')}`, decoded: false, kind: 'encoded slash' });
  out.push({ path: `/${segs[0]};x=1/${segs.slice(1).join('/')}`, decoded: false, kind: 'semicolon parameter' });
  out.push({ path: path.toUpperCase(), decoded: false, kind: 'upper case' });
  out.push({ path: join([segs[0]![0]!.toUpperCase() + segs[0]!.slice(1), ...segs.slice(1)]), decoded: false, kind: 'capitalised first segment' });
  return out;
}

type Scope = 'infer' | 'batch' | 'admin';
interface Route {
  app: 'gateway' | 'batch';
  method: string;
  pattern: string;
  path: string;
  scope: Scope;
  body?: unknown;
}

const INFER_BODY = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: [0.5] }] };

/** Bodies a bypass would act on (the state check below would see it); others get `{}`. */
const BODIES: Record<string, unknown> = {
  'PUT /admin/api/devices/:node/:local/partition': { onlineShare: 1, batchShare: 0, batchMayBorrow: false },
  'POST /admin/api/allocations': { node: 'node-a', owner: 'x', units: 1 },
  'POST /admin/api/keys': { name: 'bypass', scopes: ['admin'] },
  'PUT /admin/api/models/:model/limits': { maxQueue: 1 },
  'POST /v2/models/:model/infer': INFER_BODY,
  'POST /v2/models/:model/versions/:version/infer': INFER_BODY,
  'POST /v1/batches': { task: 'score', items: [1, 2, 3], reducer: 'summarize', chunkSize: 10 },
};

/**
 * What each route family is meant to need, written down independently of route-policy.ts:
 * the sweep checks the policy against this intent.
 */
function intended(method: string, pattern: string): Scope | 'public' {
  if (pattern.startsWith('/v2/health/') || pattern === '/metrics') return 'public';
  if ((method === 'GET' || method === 'HEAD') && (pattern === '/admin' || pattern === '/admin/:file')) return 'public';
  if (pattern.startsWith('/v2/repository')) return 'admin';
  if (pattern === '/v2' || pattern.startsWith('/v2/')) return 'infer';
  if (pattern === '/v1/batches' || pattern.startsWith('/v1/batches/')) return 'batch';
  if (pattern === '/v1/files' || pattern.startsWith('/v1/files/')) return 'batch';
  return 'admin';
}

/** A request path for a route pattern; ids that a bypass would act on (the bootstrap key, the scorer). */
function concrete(pattern: string): string {
  return pattern.replace(/:(\w+)/g, (_m, name: string) => {
    if (name === 'model') return 'scorer';
    if (name === 'version') return '1';
    if (name === 'node') return 'node-a';
    if (name === 'local') return '0';
    if (name === 'action') return 'cancel';
    if (name === 'id' && pattern.startsWith('/v1/files')) return fileId;
    if (name === 'id') return pattern.startsWith('/admin/api/keys') ? 'bootstrap' : pattern.includes('batches') ? BATCH_ID : '1';
    return 'x';
  });
}

/** Every route the app's router holds, from Fastify's own route tree (HEAD twins left out). */
function registered(app: {
  getHttpAdapter(): { getInstance(): { printRoutes(o: { commonPrefix: boolean }): string } };
}): { method: string; pattern: string }[] {
  const out: { method: string; pattern: string }[] = [];
  const stack: string[] = [];
  for (const line of app.getHttpAdapter().getInstance().printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^((?:│ {3}| {4})*)(?:├── |└── )(\S+)(?: \(([^)]*)\))?$/.exec(line);
    if (!m) continue;
    const depth = [...m[1]!].length / 4;
    stack.length = depth;
    stack.push((stack[depth - 1] ?? '') + m[2]!);
    for (const method of (m[3] ?? '').split(',').map((x) => x.trim())) {
      if (method && method !== 'HEAD') out.push({ method, pattern: stack[depth]! });
    }
  }
  return out;
}

describe('authorization on the matched route: encoded, doubled, dotted, cased and trailing variants', () => {
  let db: TestDatabase;
  let gw: RunningGateway;
  let batch: RunningBatch;
  const keys: Record<Scope, string> = { admin: ADMIN_KEY, infer: '', batch: '' };
  /** Every protected route of both apps, read from their routers: a route added later is swept too. */
  const ROUTES: Route[] = [];
  const base = (r: Route): string => (r.app === 'gateway' ? gw.url : batch.url);
  /** Keys that lack the route's scope (admin implies all, so admin routes get both others). */
  const wrongKeys = (s: Scope): Scope[] => (s === 'admin' ? ['infer', 'batch'] : s === 'infer' ? ['batch'] : ['infer']);

  beforeAll(async () => {
    db = await createTestDatabase();
    const common = {
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      QUEUE_PREFIX: testQueuePrefix(),
      LOG_LEVEL: 'silent',
      HOST: '127.0.0.1',
      TANDEM_ADMIN_KEY: ADMIN_KEY,
      // Hundreds of deliberate 401s from one address here; the failure limit has its own test.
      AUTH_FAIL_RATE_LIMIT_RPS: '0',
    };
    batch = await startBatch(loadBatchConfig({ ...common, BATCH_PORT: '0' }));
    const uploaded = await fetch(`${batch.url}/v1/files?purpose=batch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/jsonl' },
      body: '{"a":1}\n',
    });
    expect(uploaded.status).toBe(200);
    fileId = ((await uploaded.json()) as { id: string }).id;
    gw = await startGateway(
      loadGatewayConfig({ ...common, GATEWAY_PORT: '0', GATEWAY_GRPC_PORT: '0', MODEL_REPOSITORY: resolve(process.cwd(), 'models'), BATCH_API_URL: batch.url }),
    );
    for (const [name, app] of [
      ['gateway', gw.app],
      ['batch', batch.app],
    ] as const) {
      for (const { method, pattern } of registered(app)) {
        const scope = intended(method, pattern);
        if (scope !== 'public')
          ROUTES.push({
            app: name,
            method,
            pattern,
            path: concrete(pattern),
            scope,
            body: BODIES[`${method} ${pattern}`] ?? (method === 'GET' || method === 'DELETE' ? undefined : {}),
          });
      }
    }
    for (const s of ['infer', 'batch'] as const) {
      const res = await raw(gw.url, 'POST', '/admin/api/keys', ADMIN_KEY, { name: `only-${s}`, scopes: [s] });
      expect(res.status).toBe(201);
      keys[s] = (JSON.parse(res.body) as { key: string }).key;
    }
  });

  afterAll(async () => {
    agent.destroy();
    await Promise.all([gw?.app.close(), batch?.app.close()]);
    await db?.drop();
  });

  const scorerReady = async (): Promise<number> => (await raw(gw.url, 'GET', '/v2/models/scorer/ready', ADMIN_KEY)).status;
  const state = async (): Promise<{ audit: number; keys: number; batches: number; files: number }> => {
    const audit = JSON.parse((await raw(gw.url, 'GET', '/admin/api/audit?limit=500', ADMIN_KEY)).body) as { entries: unknown[] };
    const list = JSON.parse((await raw(gw.url, 'GET', '/admin/api/keys', ADMIN_KEY)).body) as { keys: unknown[] };
    const batches = JSON.parse((await raw(batch.url, 'GET', '/v1/batches', ADMIN_KEY)).body) as { items: unknown[] };
    const files = JSON.parse((await raw(batch.url, 'GET', '/v1/files', ADMIN_KEY)).body) as { data: unknown[] };
    return { audit: audit.entries.length, keys: list.keys.length, batches: batches.items.length, files: files.data.length };
  };

  it('the sweep holds every protected route of both apps, read from their routers', () => {
    const have = new Set(ROUTES.map((r) => `${r.app} ${r.method} ${r.pattern} ${r.scope}`));
    for (const want of [
      'gateway GET /admin/api/keys admin',
      'gateway DELETE /admin/api/keys/:id admin',
      'gateway PUT /admin/api/devices/:node/:local/partition admin',
      'gateway POST /admin/api/allocations admin',
      'gateway GET /admin/api/hybrid admin',
      'gateway PUT /admin/api/models/:model/limits admin',
      'gateway POST /admin/api/batches/:id/:action admin',
      'gateway POST /v2/repository/index admin',
      'gateway POST /v2/repository/models/:model/load admin',
      'gateway POST /v2/repository/models/:model/unload admin',
      'gateway GET /v2 infer',
      'gateway GET /v2/models/:model/versions/:version/ready infer',
      'gateway POST /v2/models/:model/infer infer',
      'batch POST /v1/batches batch',
      'batch GET /v1/batches/:id/results batch',
      'batch POST /v1/batches/:id/pause batch',
      'batch POST /v1/files batch',
      'batch GET /v1/files/:id/content batch',
      'batch DELETE /v1/files/:id batch',
    ]) {
      expect(have.has(want), want).toBe(true);
    }
    expect(ROUTES.length).toBeGreaterThanOrEqual(40);
    // Open routes are not in it.
    expect([...have].some((r) => r.includes('/v2/health') || r.includes(' /metrics ') || r.includes('/admin/:file'))).toBe(false);
  });

  it('the issue replayed: an infer key cannot unload through /v2/%72epository (403), the model stays ready', async () => {
    expect(await scorerReady()).toBe(200);
    const res = await raw(gw.url, 'POST', '/v2/%72epository/models/scorer/unload', keys.infer, {});
    expect([res.status, JSON.parse(res.body)]).toEqual([403, { error: "this key lacks the 'admin' scope" }]);
    expect((await raw(gw.url, 'POST', '/v2/repository/models/scorer/unload', keys.infer, {})).status).toBe(403);
    expect(await scorerReady()).toBe(200);
  });

  it('every variant of every protected route: 401 without a key, 403 (or 404 where nothing matched) with the wrong scope', async () => {
    const before = await state();
    const seen = new Map<string, number>();
    for (const route of ROUTES) {
      for (const v of [{ path: route.path, decoded: true, kind: 'as written' }, ...variants(route.path)]) {
        const label = `${route.method} ${v.path} (${route.app}, ${v.kind})`;
        const anon = await raw(base(route), route.method, v.path, undefined, route.body);
        expect(anon.status, label).toBe(401);
        expect(JSON.parse(anon.body), label).toHaveProperty('error');
        for (const s of wrongKeys(route.scope)) {
          const res = await raw(base(route), route.method, v.path, keys[s], route.body);
          // Where the router decodes the spelling back to the route, the route's own rule applies.
          if (v.decoded)
            expect([res.status, JSON.parse(res.body)], `${label} with a ${s} key`).toEqual([403, { error: `this key lacks the '${route.scope}' scope` }]);
          else expect([403, 404], `${label} with a ${s} key: ${res.status}`).toContain(res.status);
          expect(JSON.parse(res.body), label).toHaveProperty('error');
          seen.set(String(res.status), (seen.get(String(res.status)) ?? 0) + 1);
        }
      }
      if (route.path.startsWith('/v2/repository')) expect(await scorerReady(), `after ${route.method} ${route.path}`).toBe(200);
    }
    // Both outcomes occur: the sweep reaches the router's decoding and its not-found path.
    expect(seen.get('403')).toBeGreaterThan(100);
    expect(seen.get('404')).toBeGreaterThan(100);
    expect(await scorerReady()).toBe(200);
    // Nothing a wrong key sent acted: no audit entry, key or batch appeared or went away.
    expect(await state()).toEqual(before);
  });

  it('HEAD on a GET route is authorized like the GET', async () => {
    expect((await raw(gw.url, 'HEAD', '/admin/api/keys', keys.infer)).status).toBe(403);
    expect((await raw(gw.url, 'HEAD', '/admin/api/%6Beys', keys.infer)).status).toBe(403);
    expect((await raw(gw.url, 'HEAD', '/admin/api/keys')).status).toBe(401);
    expect((await raw(gw.url, 'HEAD', '/admin/api/keys', ADMIN_KEY)).status).toBe(200);
  });

  it('the right key still reaches every family of routes, including through an encoded spelling', async () => {
    expect((await raw(gw.url, 'POST', '/v2/models/%73corer/infer', keys.infer, INFER_BODY)).status).toBe(200);
    expect((await raw(gw.url, 'GET', '/v2', keys.infer)).status).toBe(200);
    expect((await raw(gw.url, 'GET', '/admin/api/%6Beys', ADMIN_KEY)).status).toBe(200);
    expect((await raw(batch.url, 'GET', '/v1/%62atches', keys.batch)).status).toBe(200);
    expect((await raw(batch.url, 'GET', '/v1/%66iles', keys.batch)).status).toBe(200);
    expect((await raw(gw.url, 'GET', '/admin/api/batches', ADMIN_KEY)).status).toBe(200);
    expect((await raw(gw.url, 'POST', '/v2/repository/index', ADMIN_KEY, {})).status).toBe(200);
  });

  it('an unknown path: 401 without a key (nothing learned), 404 with any valid key; open routes stay open', async () => {
    for (const [b, p] of [
      [() => gw.url, '/no/such/route'],
      [() => gw.url, '/v2/repository/models/scorer/explode'],
      [() => batch.url, '/v1/batchez'],
    ] as const) {
      expect((await raw(b(), 'GET', p)).status, p).toBe(401);
      const res = await raw(b(), 'GET', p, keys.infer);
      expect(res.status, p).toBe(404);
      expect(JSON.parse(res.body)).toHaveProperty('error');
    }
    expect((await raw(gw.url, 'GET', '/v2/health/ready')).status).toBe(200);
    expect((await raw(gw.url, 'GET', '/v2/health/%72eady')).status).toBe(200);
    expect((await raw(batch.url, 'GET', '/v2/health/live')).status).toBe(200);
    expect((await raw(gw.url, 'GET', '/metrics')).status).toBe(200);
    expect((await raw(gw.url, 'GET', '/admin')).status).toBe(200);
    expect((await raw(gw.url, 'GET', '/admin/app.js')).status).toBe(200);
    // The panel's public file route does not open odd names, whatever the spelling.
    expect((await raw(gw.url, 'GET', '/admin/..%2fapi%2fkeys')).status).toBe(401);
  });
});
