import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DomainException, HTTP_STATUS_BY_CODE } from '@tandem/shared';
import type { GatewayConfig } from '../config/gateway.config';
import { BATCH_PROXY_MAX_BYTES, BatchApiClient } from './batch-api.client';
import { PanelAssets } from './panel-assets';

/** A stand-in batch app on a real socket; answers by path. */
function fakeBatchApp(): Promise<{ server: Server; url: string; seen: { url?: string; auth?: string } }> {
  const seen: { url?: string; auth?: string } = {};
  const server = createServer((req, res) => {
    seen.url = req.url;
    seen.auth = req.headers.authorization;
    if (req.url?.startsWith('/v1/batches/big')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ pad: 'x'.repeat(BATCH_PROXY_MAX_BYTES) }));
    } else if (req.url?.startsWith('/v1/batches/html')) {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<h1>bad gateway</h1>');
    } else if (req.url?.startsWith('/v1/batches/slow')) {
      // never answers
    } else {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'batch x not found' }));
    }
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen })),
  );
}

const client = (batchApiUrl: string): BatchApiClient => new BatchApiClient({ batchApiUrl } as GatewayConfig);

async function failure(p: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DomainException) return { status: HTTP_STATUS_BY_CODE[e.code], message: e.message };
    throw e;
  }
  throw new Error('expected a failure');
}

describe("BatchApiClient (the panel's batch proxy)", () => {
  let fake: Awaited<ReturnType<typeof fakeBatchApp>>;
  beforeAll(async () => {
    fake = await fakeBatchApp();
  });
  afterAll(() => {
    fake.server.closeAllConnections();
    fake.server.close();
  });

  it("relays status and JSON body, forwarding the caller's Authorization header", async () => {
    const r = await client(fake.url).call('GET', '/abc?limit=5', 'Bearer k1');
    expect(r).toEqual({ status: 404, body: { error: 'batch x not found' } });
    expect(fake.seen).toEqual({ url: '/v1/batches/abc?limit=5', auth: 'Bearer k1' });
  });

  it('maps an unreachable batch app, a non-JSON answer and an oversized answer to 503 {"error"}', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    expect(await failure(client(`http://127.0.0.1:${port}`).call('GET', '', undefined))).toEqual({
      status: 503,
      message: `batch API at http://127.0.0.1:${port} unreachable: ECONNREFUSED`,
    });
    expect(await failure(client(fake.url).call('GET', '/html', undefined))).toEqual({ status: 503, message: 'batch API answered 502 with a non-JSON body' });
    expect((await failure(client(fake.url).call('GET', '/big', undefined))).message).toMatch(/answer over 2097152 bytes/);
    const impatient = client(fake.url);
    impatient.timeoutMs = 150;
    expect(await failure(impatient.call('POST', '/slow/cancel', 'Bearer k'))).toEqual({
      status: 503,
      message: `batch API at ${fake.url} unreachable: no answer within 150 ms`,
    });
  });
});

describe('PanelAssets', () => {
  it('serves only allow-listed names', async () => {
    const assets = new PanelAssets();
    const html = await assets.get('index.html');
    expect(html?.contentType).toBe('text/html; charset=utf-8');
    expect(html?.body.toString()).toContain('/admin/app.js');
    for (const name of ['../panel-assets.ts', '.swcrc', 'constructor', '__proto__', 'toString', 'INDEX.HTML', '']) expect(assets.get(name)).toBeUndefined();
  });
});
