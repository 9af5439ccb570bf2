import { request as httpRequest } from 'node:http';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { credentials, loadPackageDefinition, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyService } from '@tandem/auth';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { GrpcServerService } from '../apps/gateway/src/grpc/grpc-server.service';
import { gatewayEnv } from './support/gateway-harness';
import { createTestDatabase, type TestDatabase } from './support/test-env';

const BAD_KEY = 'tdm_000000000000_not-a-real-key-at-all';

interface Raw {
  status: number;
  retryAfter: string | undefined;
  body: Record<string, unknown>;
}

/** GET over a fresh socket from `from` (any 127/8 address is local), so tests can be two clients. */
function get(base: string, path: string, key?: string, from = '127.0.0.1'): Promise<Raw> {
  const u = new URL(base);
  return new Promise((ok, fail) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, localAddress: from, headers: key ? { authorization: `Bearer ${key}` } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const h = res.headers['retry-after'];
        ok({
          status: res.statusCode ?? 0,
          retryAfter: Array.isArray(h) ? h[0] : h,
          body: JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, unknown>,
        });
      });
    });
    req.on('error', fail);
    req.end();
  });
}

interface GrpcAnswer {
  code: number;
  details: string;
  retryAfter: string | undefined;
}

describe('rate limits: per key on REST and gRPC alike, failed authentication per client address', () => {
  let db: TestDatabase;
  let gw: RunningGateway;
  let client: { ServerLive(req: object, md: Metadata, cb: (e: ServiceError | null) => void): void; close(): void };
  let keys: ApiKeyService;

  const live = (key?: string): Promise<GrpcAnswer> =>
    new Promise((ok) => {
      const md = new Metadata();
      if (key) md.set('authorization', `Bearer ${key}`);
      client.ServerLive({}, md, (err) => {
        const ra = err?.metadata?.get('retry-after')[0];
        ok({ code: err ? err.code : status.OK, details: err?.details ?? '', retryAfter: ra === undefined ? undefined : String(ra) });
      });
    });
  /** Keys made in-process: creating them over HTTP would spend the admin key's own bucket. */
  const newKey = async (name: string): Promise<string> => (await keys.create(name, ['infer'], 'test')).key;

  beforeAll(async () => {
    db = await createTestDatabase();
    gw = await startGateway(
      loadGatewayConfig(
        gatewayEnv(db.url, {
          TANDEM_AUTH: 'on',
          MODEL_REPOSITORY: resolve(process.cwd(), 'models'),
          // One token per 10 s: nothing refills while a test runs (even on a busy machine), so the counts are exact.
          RATE_LIMIT_PER_KEY_RPS: '0.1',
          RATE_LIMIT_BURST: '5',
          AUTH_FAIL_RATE_LIMIT_RPS: '0.1',
          AUTH_FAIL_RATE_LIMIT_BURST: '5',
        }),
      ),
    );
    keys = gw.app.get(ApiKeyService);
    const defs = loadSync(resolve(process.cwd(), 'apps/gateway/src/grpc/proto/grpc_service.proto'), {
      keepCase: true,
      longs: String,
      defaults: true,
      oneofs: true,
    });
    const pkg = loadPackageDefinition(defs) as unknown as {
      inference: { GRPCInferenceService: new (a: string, c: ReturnType<typeof credentials.createInsecure>) => typeof client };
    };
    client = new pkg.inference.GRPCInferenceService(`127.0.0.1:${gw.app.get(GrpcServerService).port}`, credentials.createInsecure());
  });

  afterAll(async () => {
    client?.close();
    await gw?.app.close();
    await db?.drop();
  });

  it('gRPC spends the same per-key bucket as REST: RESOURCE_EXHAUSTED with retry-after past the burst', async () => {
    const noisy = await newKey('noisy');
    const quiet = await newKey('quiet');
    const answers = await Promise.all(Array.from({ length: 12 }, () => live(noisy)));
    expect(answers.filter((a) => a.code === status.OK)).toHaveLength(5);
    const limited = answers.filter((a) => a.code === status.RESOURCE_EXHAUSTED);
    expect(limited).toHaveLength(7);
    expect(limited[0]!.details).toBe('rate limit of 0.1 requests/s for this key exceeded');
    expect(Number(limited[0]!.retryAfter)).toBeGreaterThanOrEqual(1);
    // The same key over REST finds the bucket empty; another key is untouched on both.
    const rest = await get(gw.url, '/v2', noisy);
    expect([rest.status, rest.body]).toEqual([429, { error: 'rate limit of 0.1 requests/s for this key exceeded' }]);
    expect(Number(rest.retryAfter)).toBeGreaterThanOrEqual(1);
    expect((await live(quiet)).code).toBe(status.OK);
    expect((await get(gw.url, '/v2', quiet)).status).toBe(200);
  });

  it('failed authentication is limited per address across gRPC and REST; known keys and other addresses still get in', async () => {
    const known = await newKey('known');
    expect((await get(gw.url, '/v2', known)).status).toBe(200); // verified once: known to this process
    const unseen = await newKey('unseen');

    const fails = [];
    for (let i = 0; i < 5; i++) fails.push((await live(BAD_KEY)).code);
    expect(fails).toEqual(Array(5).fill(status.UNAUTHENTICATED));
    const blocked = await live(BAD_KEY);
    expect([blocked.code, blocked.details]).toEqual([status.RESOURCE_EXHAUSTED, 'too many failed authentication attempts from this address']);
    expect(Number(blocked.retryAfter)).toBeGreaterThanOrEqual(1);

    // REST from the same address: the same bucket, so 429 at once, with or without a key.
    for (const key of [BAD_KEY, undefined, unseen]) {
      const res = await get(gw.url, '/v2', key);
      expect([res.status, res.body], String(key)).toEqual([429, { error: 'too many failed authentication attempts from this address' }]);
      expect(Number(res.retryAfter)).toBeGreaterThanOrEqual(1);
    }
    // A key this process has verified before still works from the blocked address (callers
    // behind one proxy share an address), on both transports.
    expect((await get(gw.url, '/v2', known)).status).toBe(200);
    expect((await live(known)).code).toBe(status.OK);
    // Another client address has its own bucket.
    expect((await get(gw.url, '/v2', BAD_KEY, '127.0.0.2')).status).toBe(401);
    expect((await get(gw.url, '/v2', unseen, '127.0.0.2')).status).toBe(200);
    // Open routes never count and are never blocked.
    expect((await get(gw.url, '/v2/health/ready')).status).toBe(200);

    // After the advertised wait the address may try again (and gets an honest 401).
    const wait = Number((await get(gw.url, '/v2', BAD_KEY)).retryAfter);
    await sleep(wait * 1000 + 100);
    expect((await get(gw.url, '/v2', BAD_KEY)).status).toBe(401);
  });
});
