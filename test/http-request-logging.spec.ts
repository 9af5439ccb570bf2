import { Module } from '@nestjs/common';
import { afterEach, describe, expect, it } from 'vitest';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createHttpApp } from '../libs/shared/src/http/fastify-app';
import { createRootLogger } from '../libs/shared/src/logging/logger';

@Module({})
class EmptyModule {}

/** The per-request logger is made lazily (lazyChildLogger): its lines must still carry the request id. */
describe('request logging over a real socket', () => {
  let app: NestFastifyApplication | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  async function start(logRequests: boolean): Promise<{ url: string; lines: Record<string, unknown>[] }> {
    const lines: Record<string, unknown>[] = [];
    const logger = createRootLogger('info', 'test', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
    app = await createHttpApp(EmptyModule, { logger, bodyLimitBytes: 1024, logRequests });
    await app.listen(0, '127.0.0.1');
    return { url: await app.getUrl(), lines };
  }

  it('request lines carry the caller’s x-request-id as reqId, and the response echoes it', async () => {
    const { url, lines } = await start(true);
    const res = await fetch(`${url}/nowhere`, { headers: { 'x-request-id': 'req-42' } });
    expect(res.status).toBe(404);
    expect(res.headers.get('x-request-id')).toBe('req-42');
    const mine = lines.filter((l) => l.reqId === 'req-42');
    expect(mine.map((l) => l.msg)).toEqual(['incoming request', 'request completed']);
    expect((mine[1]!.res as { statusCode: number }).statusCode).toBe(404);
    expect(mine.every((l) => l.app === 'test')).toBe(true);
  });

  it('with request logging off, a request writes no line', async () => {
    const { url, lines } = await start(false);
    const before = lines.length;
    expect((await fetch(`${url}/nowhere`, { headers: { 'x-request-id': 'req-43' } })).status).toBe(404);
    expect(lines.slice(before).filter((l) => l.reqId !== undefined)).toEqual([]);
  });
});
