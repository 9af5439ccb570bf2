import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { get, request } from 'node:http';
import { join } from 'node:path';
import { Client } from 'pg';

export const MB = 1024 * 1024;

export interface Answer {
  status: number;
  body: Record<string, unknown>;
  text: string;
}

/** One API call with a key; JSON answers parsed. */
export async function call(
  base: string,
  method: string,
  path: string,
  key: string,
  init: { body?: string | Uint8Array | AsyncIterable<Uint8Array>; type?: string } = {},
): Promise<Answer> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(init.type ? { 'content-type': init.type } : {}) },
    body: init.body,
    ...(init.body && typeof (init.body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function' ? { duplex: 'half' } : {}),
  } as RequestInit);
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = {};
  }
  return { status: res.status, body, text };
}

export type Part = { name: string; value: string } | { name: string; filename: string; data: () => AsyncIterable<Buffer> | Iterable<Buffer> };

/** A multipart/form-data body produced on the fly, parts in the given order. */
export function multipart(parts: Part[]): { type: string; body: () => AsyncGenerator<Buffer> } {
  const boundary = `----tandem${Math.random().toString(36).slice(2)}`;
  async function* body(): AsyncGenerator<Buffer> {
    for (const p of parts) {
      if ('value' in p) {
        yield Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${p.name}"\r\n\r\n${p.value}\r\n`);
      } else {
        yield Buffer.from(
          `--${boundary}\r\ncontent-disposition: form-data; name="${p.name}"; filename="${p.filename}"\r\ncontent-type: application/octet-stream\r\n\r\n`,
        );
        for await (const c of p.data()) yield c;
        yield Buffer.from('\r\n');
      }
    }
    yield Buffer.from(`--${boundary}--\r\n`);
  }
  return { type: `multipart/form-data; boundary=${boundary}`, body };
}

/** JSONL request lines of about `lineBytes` each, `total` bytes in all (the last line cut to fit, still valid). */
export function* jsonlLines(total: number, lineBytes = 1024): Generator<Buffer> {
  let made = 0;
  let i = 0;
  let batch: string[] = [];
  let batchBytes = 0;
  while (made < total) {
    const head = `{"custom_id":"r${i}","method":"POST","url":"/v2/models/scorer/infer","body":{"pad":"`;
    const tail = '"}}\n';
    const pad = Math.max(0, Math.min(lineBytes, total - made) - head.length - tail.length);
    const line = `${head}${'x'.repeat(pad)}${tail}`;
    batch.push(line);
    batchBytes += line.length;
    made += line.length;
    i++;
    if (batchBytes >= 64 * 1024) {
      yield Buffer.from(batch.join(''));
      batch = [];
      batchBytes = 0;
    }
  }
  if (batch.length) yield Buffer.from(batch.join(''));
}

/** Hash and size of a generated body, without keeping it. */
export function digest(chunks: Iterable<Buffer>): { sha256: string; size: number } {
  const h = createHash('sha256');
  let size = 0;
  for (const c of chunks) {
    h.update(c);
    size += c.length;
  }
  return { sha256: h.digest('hex'), size };
}

/** GETs over node:http (not fetch: the test measures this process's memory) and streams the body through SHA-256. */
export function httpDigest(url: string, key: string): Promise<{ status: number; sha256: string; size: number }> {
  return new Promise((resolve, reject) => {
    get(url, { headers: { authorization: `Bearer ${key}` } }, (res) => {
      const h = createHash('sha256');
      let size = 0;
      res.on('data', (c: Buffer) => {
        h.update(c);
        size += c.length;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, sha256: h.digest('hex'), size }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** Streams a response body through SHA-256. */
export async function fetchDigest(url: string, key: string): Promise<{ status: number; sha256: string; size: number; headers: Headers }> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${key}` } });
  const h = createHash('sha256');
  let size = 0;
  for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) {
    h.update(c);
    size += c.length;
  }
  return { status: res.status, sha256: h.digest('hex'), size, headers: res.headers };
}

/**
 * POSTs over a raw socket, chunked unless `contentLength` is given, honouring backpressure, and
 * resolves with the answer even when the server answers early and closes mid-body.
 */
export function streamUpload(
  url: string,
  key: string,
  contentType: string,
  chunks: () => Iterator<Buffer> | AsyncIterator<Buffer>,
  contentLength?: number,
): Promise<{ status: number; body: string; sent: number }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': contentType, authorization: `Bearer ${key}` };
    if (contentLength !== undefined) headers['content-length'] = String(contentLength);
    const req = request(url, { method: 'POST', headers });
    let sent = 0;
    let answered = false;
    const gen = chunks();
    const pump = async (): Promise<void> => {
      while (!answered && !req.destroyed) {
        const next = await gen.next();
        if (next.done) {
          req.end();
          return;
        }
        sent += next.value.length;
        if (!req.write(next.value)) {
          await new Promise<void>((r) => {
            const go = (): void => {
              req.off('drain', go).off('close', go);
              r();
            };
            req.on('drain', go).on('close', go);
          });
        }
      }
    };
    req.on('response', (res) => {
      answered = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        resolve({ status: res.statusCode ?? 0, body, sent });
        req.destroy();
      };
      res.on('end', finish);
      res.on('close', finish);
    });
    req.on('error', (e) => {
      if (!answered) reject(e);
    });
    pump().catch(reject);
  });
}

/** What is stored anywhere: file rows, Postgres blobs and large objects, disk objects and partials. */
export async function storedCounts(
  dbUrl: string,
  blobDir?: string,
): Promise<{ rows: number; blobs: number; largeObjects: number; diskObjects: number; diskPartials: number }> {
  const pg = new Client({ connectionString: dbUrl });
  await pg.connect();
  try {
    const n = async (sql: string): Promise<number> => Number((await pg.query<{ n: string }>(sql)).rows[0]!.n);
    const files = (d: string): number => {
      try {
        return readdirSync(d, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;
      } catch {
        return 0;
      }
    };
    return {
      rows: await n('SELECT count(*) AS n FROM batch_file'),
      blobs: await n('SELECT count(*) AS n FROM blob_object'),
      largeObjects: await n('SELECT count(*) AS n FROM pg_largeobject_metadata'),
      diskObjects: blobDir ? files(join(blobDir, 'objects')) : 0,
      diskPartials: blobDir ? files(join(blobDir, 'tmp')) : 0,
    };
  } finally {
    await pg.end();
  }
}

export async function sql(dbUrl: string, text: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  const pg = new Client({ connectionString: dbUrl });
  await pg.connect();
  try {
    return (await pg.query(text, params)).rows as Record<string, unknown>[];
  } finally {
    await pg.end();
  }
}
