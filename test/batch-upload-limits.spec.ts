import { request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBatch } from '../apps/batch/src/bootstrap';
import { createTestDatabase, testQueuePrefix, type TestDatabase } from './support/test-env';
import { batchEnv, deleteQueueKeys, postJson, startTestBatch, sumOfSquares, waitForState } from './support/batch-harness';

interface Streamed {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** Body bytes the client had handed to the socket when the answer arrived. */
  sentBeforeAnswer: number;
  /** Body bytes handed to the socket in all (the server may close before the generator ends). */
  sent: number;
}

/**
 * POSTs a body produced on the fly (never held whole) over a real socket, chunked unless
 * `contentLength` is given, honouring backpressure; resolves with the answer even when the
 * server answers early and closes while the body is still being written.
 */
function streamUpload(url: string, contentType: string, chunks: () => Generator<Buffer>, contentLength?: number): Promise<Streamed> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': contentType };
    if (contentLength !== undefined) headers['content-length'] = String(contentLength);
    const req = request(url, { method: 'POST', headers });
    let sent = 0;
    let sentBeforeAnswer = -1;
    let answered = false;
    let done = false;
    const gen = chunks();
    const pump = (): void => {
      while (!answered && !req.destroyed) {
        const next = gen.next();
        if (next.done) {
          req.end();
          return;
        }
        sent += next.value.length;
        if (!req.write(next.value)) {
          req.once('drain', pump);
          return;
        }
      }
    };
    req.on('response', (res) => {
      sentBeforeAnswer = sent;
      answered = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      const finish = (): void => {
        if (done) return;
        done = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, sentBeforeAnswer, sent });
        req.destroy();
      };
      res.on('end', finish);
      res.on('close', finish);
      res.on('error', finish);
    });
    req.on('error', (e) => {
      // Writing after the server answered and closed is expected; an error before any answer is not.
      if (!answered) reject(e);
    });
    pump();
  });
}

/** Sends only a request head (declaring a body it never sends) and resolves with the answer. */
function headOnly(base: string, path: string, contentType: string, contentLength: number): Promise<{ status: number; body: unknown }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const s = connect(Number(url.port), url.hostname);
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      out += d;
      const split = out.indexOf('\r\n\r\n');
      const len = /content-length: (\d+)/i.exec(out);
      if (split < 0 || !len || out.length < split + 4 + Number(len[1])) return;
      resolve({ status: Number(out.slice(9, 12)), body: JSON.parse(out.slice(split + 4)) as unknown });
      s.destroy();
    });
    s.on('error', reject);
    s.on('close', () => reject(new Error(`closed without a full answer: ${JSON.stringify(out)}`)));
    s.write(`POST ${path} HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: ${contentType}\r\ncontent-length: ${contentLength}\r\n\r\n`);
  });
}

const MB = 1024 * 1024;

function* repeat(total: number, piece: Buffer): Generator<Buffer> {
  for (let n = 0; n < total; n += piece.length) yield n + piece.length <= total ? piece : piece.subarray(0, total - n);
}

/** `n` NDJSON lines `0\n1\n…`, produced in ~64 kB pieces. */
function* numberLines(n: number): Generator<Buffer> {
  let s = '';
  for (let i = 0; i < n; i++) {
    s += `${i}\n`;
    if (s.length >= 64 * 1024) {
      yield Buffer.from(s);
      s = '';
    }
  }
  if (s) yield Buffer.from(s);
}

describe('batch upload limits are enforced while bytes arrive (real sockets)', () => {
  let db: TestDatabase;
  let prefix = '';
  let app: RunningBatch;
  let submitUrl: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestBatch(
      batchEnv(db.url, (prefix = testQueuePrefix()), {
        BATCH_UPLOAD_LIMIT_MB: '4',
        BATCH_UPLOAD_LINE_LIMIT_KB: '64',
        BATCH_BODY_LIMIT_MB: '1',
        BATCH_MAX_ITEMS: '2000000',
      }),
    );
    submitUrl = `${app.url}/v1/batches?task=score&reducer=summarize&chunkSize=1000`;
  });

  afterAll(async () => {
    await app?.app.close();
    await db?.drop();
    if (prefix) await deleteQueueKeys(prefix);
  });

  const assertAliveAndWorking = async (): Promise<void> => {
    expect((await fetch(`${app.url}/v2/health/live`)).status).toBe(200);
    const ok = await postJson(`${app.url}/v1/batches`, { task: 'score', items: [1, 2, 3], reducer: 'summarize' });
    expect(ok.status).toBe(201);
    expect((await waitForState(app.url, ok.body.id as string, ['succeeded', 'failed'])).result).toEqual({ count: 3, sum: '14' });
  };

  it('a 200 MB line without a newline (chunked) is a 413 once the line cap is passed, read no further than a bounded drain', async () => {
    const res = await streamUpload(submitUrl, 'application/x-ndjson', () => repeat(200 * MB, Buffer.alloc(64 * 1024, 0x78)));
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toEqual({ error: 'line 1: longer than 65536 bytes' });
    // The server stopped at 64 kB and drains at most 8 MB more; the rest is socket buffers.
    expect(res.sent).toBeLessThan(40 * MB);
    await assertAliveAndWorking();
  });

  it('a long line after good ones is rejected by its line number', async () => {
    function* body(): Generator<Buffer> {
      yield Buffer.from('1\n2\n');
      yield* repeat(1 * MB, Buffer.alloc(16 * 1024, 0x31));
    }
    const res = await streamUpload(submitUrl, 'application/x-ndjson', body);
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toEqual({ error: 'line 3: longer than 65536 bytes' });
  });

  it('an NDJSON upload over the total (short lines, chunked) is a 413 as the total is passed', async () => {
    const res = await streamUpload(submitUrl, 'application/x-ndjson', () => numberLines(30_000_000)); // ~260 MB
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toEqual({ error: `request body too large (over ${4 * MB} bytes)` });
    expect(res.sent).toBeLessThan(60 * MB);
    await assertAliveAndWorking();
  });

  it('a declared Content-Length over a limit is a 413 before any of the body is sent (NDJSON and JSON)', async () => {
    const path = new URL(submitUrl).pathname + new URL(submitUrl).search;
    expect(await headOnly(app.url, path, 'application/x-ndjson', 700 * MB)).toEqual({
      status: 413,
      body: { error: `request body too large (over ${4 * MB} bytes)` },
    });
    expect(await headOnly(app.url, '/v1/batches', 'application/json', 700 * MB)).toEqual({
      status: 413,
      body: { error: `request body too large (over ${1 * MB} bytes)` },
    });
  });

  it('a chunked JSON body over the body limit is a 413 as it arrives, not after it is buffered', async () => {
    function* body(): Generator<Buffer> {
      yield Buffer.from('{"task":"score","reducer":"summarize","items":[');
      yield* repeat(200 * MB, Buffer.from('1,'.repeat(32 * 1024)));
    }
    const res = await streamUpload(`${app.url}/v1/batches`, 'application/json', body);
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toEqual({ error: `request body too large (over ${1 * MB} bytes)` });
    expect(res.sent).toBeLessThan(40 * MB);
    await assertAliveAndWorking();
  });

  it('a normal NDJSON upload (chunked, no trailing newline, CRLF) still succeeds on the same process', async () => {
    function* body(): Generator<Buffer> {
      yield* numberLines(20_000);
      yield Buffer.from('20000\r\n\r\n20001');
    }
    const res = await streamUpload(submitUrl, 'application/x-ndjson', body);
    expect(res.status, res.body).toBe(201);
    const done = await waitForState(app.url, (JSON.parse(res.body) as { id: string }).id, ['succeeded', 'failed']);
    expect(done.result).toEqual({ count: 20_002, sum: sumOfSquares(20_002) });
  });
});
