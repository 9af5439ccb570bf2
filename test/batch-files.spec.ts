import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyService } from '@tandem/auth';
import { BlobStores } from '@tandem/persistence';
import type { RunningBatch } from '../apps/batch/src/bootstrap';
import { FileRetentionService } from '../apps/batch/src/files/file-retention.service';
import { createTestDatabase, testQueuePrefix, type TestDatabase } from './support/test-env';
import { batchEnv, deleteQueueKeys, startTestBatch } from './support/batch-harness';
import { call, digest, fetchDigest, jsonlLines, MB, multipart, sql, storedCounts, streamUpload } from './support/batch-files-harness';

const ADMIN_KEY = 'files-admin-key-0123456789abcdef';
const LIMIT_MB = 8;
const JSONL = 'application/jsonl';

async function bytesOf(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('Files API: /v1/files over both blob stores (auth on, real sockets, real Postgres)', () => {
  let db: TestDatabase;
  let prefix = '';
  let blobDir = '';
  const apps: Record<'postgres' | 'disk', RunningBatch> = {} as never;
  const keys: Record<'a' | 'b', { key: string; id: string }> = {} as never;
  const counts = (): ReturnType<typeof storedCounts> => storedCounts(db.url, blobDir);

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = testQueuePrefix();
    blobDir = mkdtempSync(join(tmpdir(), 'tandem-files-'));
    const common = {
      TANDEM_AUTH: 'on',
      TANDEM_ADMIN_KEY: ADMIN_KEY,
      BATCH_ROLE: 'api',
      SCHEDULER_AGENT: 'false',
      BATCH_FILE_LIMIT_MB: String(LIMIT_MB),
      BATCH_FILE_LINE_LIMIT: '1000',
    };
    apps.postgres = await startTestBatch(batchEnv(db.url, prefix, common));
    apps.disk = await startTestBatch(batchEnv(db.url, prefix, { ...common, BATCH_BLOB_STORE: 'disk', BATCH_BLOB_DIR: blobDir }));
    const svc = apps.postgres.app.get(ApiKeyService);
    for (const name of ['a', 'b'] as const) {
      const k = await svc.create(`files-${name}`, ['batch'], 'test');
      keys[name] = { key: k.key, id: k.id };
    }
  });

  afterAll(async () => {
    await Promise.all(Object.values(apps).map((a) => a?.app.close()));
    await db?.drop();
    if (prefix) await deleteQueueKeys(prefix);
    if (blobDir) rmSync(blobDir, { recursive: true, force: true });
  });

  describe.each(['postgres', 'disk'] as const)('blob store %s', (kind) => {
    const url = (): string => apps[kind].url;

    it('multipart upload (purpose first or after the file), get, list, content byte-identical, delete', async () => {
      const data = Buffer.from('{"custom_id":"1","body":{"x":1}}\r\n\n{"custom_id":"2","body":{}}\n{"custom_id":"3"}');
      const ids: string[] = [];
      for (const order of ['purpose-first', 'file-first'] as const) {
        const file = { name: 'file', filename: `../dir/${order}.jsonl`, data: () => [data.subarray(0, 7), data.subarray(7)] };
        const purpose = { name: 'purpose', value: 'batch' };
        const form = multipart(order === 'purpose-first' ? [purpose, file] : [file, purpose]);
        const up = await call(url(), 'POST', '/v1/files', keys.a.key, { type: form.type, body: form.body() });
        expect(up.status, up.text).toBe(200);
        const f = up.body;
        expect(f).toEqual({
          id: expect.stringMatching(/^file-[0-9a-f]{24}$/),
          object: 'file',
          bytes: data.length,
          created_at: expect.any(Number),
          filename: `${order}.jsonl`,
          purpose: 'batch',
          status: 'processed',
          expires_at: (f.created_at as number) + 30 * 86_400,
        });
        expect(Math.abs((f.created_at as number) - Date.now() / 1000)).toBeLessThan(60);
        ids.push(f.id as string);
        expect((await call(url(), 'GET', `/v1/files/${f.id as string}`, keys.a.key)).body).toEqual(f);
        const content = await fetch(`${url()}/v1/files/${f.id as string}/content`, { headers: { authorization: `Bearer ${keys.a.key}` } });
        expect(content.status).toBe(200);
        expect(content.headers.get('content-length')).toBe(String(data.length));
        expect(Buffer.from(await content.arrayBuffer()).equals(data)).toBe(true);
      }
      const [row] = await sql(db.url, 'SELECT line_count, blob_store, sha256, owner FROM batch_file WHERE id = $1', [ids[0]]);
      expect(row).toEqual({ line_count: 3, blob_store: kind, sha256: createHash('sha256').update(data).digest('hex'), owner: keys.a.id });
      const list = (await call(url(), 'GET', '/v1/files', keys.a.key)).body;
      expect(list).toMatchObject({ object: 'list', has_more: false, first_id: ids[1] });
      expect((list.data as { id: string }[]).map((x) => x.id).slice(0, 2)).toEqual([ids[1], ids[0]]);
      for (const id of ids) {
        expect(await call(url(), 'DELETE', `/v1/files/${id}`, keys.a.key)).toMatchObject({ status: 200, body: { id, object: 'file', deleted: true } });
        expect((await call(url(), 'GET', `/v1/files/${id}`, keys.a.key)).status).toBe(404);
        expect((await call(url(), 'GET', `/v1/files/${id}/content`, keys.a.key)).status).toBe(404);
        expect((await call(url(), 'DELETE', `/v1/files/${id}`, keys.a.key)).status).toBe(404);
        expect(await apps[kind].app.get(BlobStores).of(kind).exists(id)).toBe(false);
      }
    });

    it('a raw JSONL body with ?purpose=batch, streamed (5 MiB): content round trip and byte ranges from the store', async () => {
      const want = digest(jsonlLines(5 * MB, 8 * 1024));
      for (const type of [JSONL, 'application/x-ndjson']) {
        const up = await streamUpload(`${url()}/v1/files?purpose=batch&filename=requests.jsonl`, keys.a.key, type, () => jsonlLines(5 * MB, 8 * 1024));
        expect(up.status, up.body).toBe(200);
        const f = JSON.parse(up.body) as { id: string; bytes: number; filename: string };
        expect([f.bytes, f.filename]).toEqual([want.size, 'requests.jsonl']);
        const got = await fetchDigest(`${url()}/v1/files/${f.id}/content`, keys.a.key);
        expect([got.status, got.size, got.sha256]).toEqual([200, want.size, want.sha256]);
        // Later, batch chunks are byte ranges of an input file: read ranges straight from the store.
        const whole = Buffer.concat([...jsonlLines(5 * MB, 8 * 1024)]);
        const store = apps[kind].app.get(BlobStores).of(kind);
        for (const [start, end] of [
          [0, 100],
          [MB - 3, 3 * MB + 7],
          [want.size - 10, want.size + 10],
        ]) {
          expect((await bytesOf(await store.get(f.id, { start: start!, end }))).equals(whole.subarray(start, end))).toBe(true);
        }
        expect((await call(url(), 'DELETE', `/v1/files/${f.id}`, keys.a.key)).status).toBe(200);
      }
    });

    it('413 over the size limit (declared, chunked raw, chunked multipart) and over the line count; nothing stored', async () => {
      const before = await counts();
      const big = (): Generator<Buffer> => jsonlLines((LIMIT_MB + 2) * MB, 64 * 1024);
      // 1 GiB declared: the answer comes before (almost) any of it is sent.
      const declared = await streamUpload(`${url()}/v1/files?purpose=batch`, keys.a.key, JSONL, () => jsonlLines(1024 * MB, 64 * 1024), 1024 * MB);
      expect([declared.status, JSON.parse(declared.body)]).toEqual([413, { error: `request body too large (over ${LIMIT_MB * MB} bytes)` }]);
      expect(declared.sent).toBeLessThan(64 * MB);
      const chunked = await streamUpload(`${url()}/v1/files?purpose=batch`, keys.a.key, JSONL, big);
      expect([chunked.status, JSON.parse(chunked.body)]).toEqual([413, { error: `request body too large (over ${LIMIT_MB * MB} bytes)` }]);
      const form = multipart([
        { name: 'purpose', value: 'batch' },
        { name: 'file', filename: 'big.jsonl', data: big },
      ]);
      const streamedForm = await streamUpload(`${url()}/v1/files`, keys.a.key, form.type, form.body);
      expect([streamedForm.status, JSON.parse(streamedForm.body)]).toEqual([413, { error: `request body too large (over ${LIMIT_MB * MB} bytes)` }]);
      const lines = await call(url(), 'POST', '/v1/files?purpose=batch', keys.a.key, { type: JSONL, body: '{}\n'.repeat(1001) });
      expect([lines.status, lines.body]).toEqual([413, { error: 'file has more than 1000 lines' }]);
      expect(await counts()).toEqual(before);
      // The app keeps serving.
      expect((await call(url(), 'GET', '/v1/files', keys.a.key)).status).toBe(200);
    });

    it('400 for what is not JSONL (raw and multipart, also when the bad line is the last), a wrong purpose, a missing file; nothing stored', async () => {
      const before = await counts();
      const bad: [string, string][] = [
        ['{"a":1}\nnot json\n', 'line 2: malformed JSON'],
        ['{"a":1}\n[1,2]', 'line 2: not a JSON object'],
        ['\n\n', 'file has no JSON lines'],
      ];
      for (const [text, error] of bad) {
        expect(await call(url(), 'POST', '/v1/files?purpose=batch', keys.a.key, { type: JSONL, body: text })).toMatchObject({ status: 400, body: { error } });
        const form = multipart([
          { name: 'file', filename: 'x.jsonl', data: () => [Buffer.from(text)] },
          { name: 'purpose', value: 'batch' },
        ]);
        expect(await call(url(), 'POST', '/v1/files', keys.a.key, { type: form.type, body: form.body() })).toMatchObject({ status: 400, body: { error } });
      }
      const ok = () => [Buffer.from('{"a":1}\n')];
      const wrongAfter = multipart([
        { name: 'file', filename: 'x.jsonl', data: ok },
        { name: 'purpose', value: 'fine-tune' },
      ]);
      expect(await call(url(), 'POST', '/v1/files', keys.a.key, { type: wrongAfter.type, body: wrongAfter.body() })).toMatchObject({
        status: 400,
        body: { error: "invalid request: purpose: must be 'batch'" },
      });
      const wrongFirst = multipart([
        { name: 'purpose', value: 'assistants' },
        { name: 'file', filename: 'x.jsonl', data: ok },
      ]);
      expect(await call(url(), 'POST', '/v1/files', keys.a.key, { type: wrongFirst.type, body: wrongFirst.body() })).toMatchObject({ status: 400 });
      const noFile = multipart([{ name: 'purpose', value: 'batch' }]);
      expect(await call(url(), 'POST', '/v1/files', keys.a.key, { type: noFile.type, body: noFile.body() })).toMatchObject({
        status: 400,
        body: { error: expect.stringMatching(/^file: missing/) },
      });
      const twoFiles = multipart([
        { name: 'purpose', value: 'batch' },
        { name: 'file', filename: 'a', data: ok },
        { name: 'file', filename: 'b', data: ok },
      ]);
      expect((await call(url(), 'POST', '/v1/files', keys.a.key, { type: twoFiles.type, body: twoFiles.body() })).status).toBeGreaterThanOrEqual(400);
      expect(await call(url(), 'POST', '/v1/files', keys.a.key, { type: JSONL, body: '{"a":1}\n' })).toMatchObject({
        status: 400,
        body: { error: expect.stringMatching(/^invalid request: purpose:/) },
      });
      expect((await call(url(), 'POST', '/v1/files?purpose=batch', keys.a.key, { type: 'application/json', body: '{"a":1}' })).status).toBe(400);
      expect(await counts()).toEqual(before);
    });
  });

  it("another key gets 404 on every route of A's file, exactly as for a file that does not exist; lists are per key; admins see all", async () => {
    const up = await call(apps.postgres.url, 'POST', '/v1/files?purpose=batch', keys.a.key, { type: JSONL, body: '{"a":1}\n' });
    const id = up.body.id as string;
    const missing = `file-${randomBytes(12).toString('hex')}`;
    for (const [method, tail] of [
      ['GET', ''],
      ['GET', '/content'],
      ['DELETE', ''],
    ] as const) {
      expect(await call(apps.postgres.url, method, `/v1/files/${id}${tail}`, keys.b.key)).toMatchObject({
        status: 404,
        body: { error: `file ${id} not found` },
      });
      expect(await call(apps.postgres.url, method, `/v1/files/${missing}${tail}`, keys.b.key)).toMatchObject({
        status: 404,
        body: { error: `file ${missing} not found` },
      });
      expect(await call(apps.postgres.url, method, `/v1/files/not-an-id${tail}`, keys.b.key)).toMatchObject({
        status: 404,
        body: { error: 'file not-an-id not found' },
      });
    }
    const listB = (await call(apps.postgres.url, 'GET', '/v1/files', keys.b.key)).body;
    expect(listB).toEqual({ object: 'list', data: [], has_more: false, first_id: null, last_id: null });
    expect((await call(apps.postgres.url, 'GET', `/v1/files?after=${id}`, keys.b.key)).status).toBe(400);
    expect((await call(apps.postgres.url, 'GET', `/v1/files/${id}`, ADMIN_KEY)).status).toBe(200);
    expect(((await call(apps.postgres.url, 'GET', '/v1/files', ADMIN_KEY)).body.data as { id: string }[]).map((f) => f.id)).toContain(id);
    expect((await call(apps.postgres.url, 'GET', `/v1/files/${id}`, keys.a.key)).status).toBe(200);
    expect((await call(apps.postgres.url, 'DELETE', `/v1/files/${id}`, keys.a.key)).status).toBe(200);
  });

  it('pagination: after/limit/order, has_more, first_id/last_id', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push(
        (await call(apps.disk.url, 'POST', `/v1/files?purpose=batch&filename=p${i}.jsonl`, keys.b.key, { type: JSONL, body: `{"i":${i}}\n` })).body
          .id as string,
      );
    const p1 = (await call(apps.disk.url, 'GET', '/v1/files?limit=2', keys.b.key)).body;
    expect(p1).toMatchObject({ has_more: true, first_id: ids[4], last_id: ids[3] });
    const p2 = (await call(apps.disk.url, 'GET', `/v1/files?limit=2&after=${ids[3]}`, keys.b.key)).body;
    expect((p2.data as { id: string }[]).map((f) => f.id)).toEqual([ids[2], ids[1]]);
    const p3 = (await call(apps.disk.url, 'GET', `/v1/files?limit=2&after=${ids[1]}`, keys.b.key)).body;
    expect(p3).toMatchObject({ has_more: false, first_id: ids[0], last_id: ids[0] });
    const asc = (await call(apps.disk.url, 'GET', `/v1/files?order=asc&after=${ids[2]}`, keys.b.key)).body;
    expect((asc.data as { id: string }[]).map((f) => f.id)).toEqual([ids[3], ids[4]]);
    expect((await call(apps.disk.url, 'GET', '/v1/files?limit=0', keys.b.key)).status).toBe(400);
    for (const id of ids) await call(apps.disk.url, 'DELETE', `/v1/files/${id}`, keys.b.key);
  });

  it('retention: expires_at = created_at + BATCH_RETENTION_DAYS or expires_after; sweepers on two nodes delete each expired file once, bytes and row', async () => {
    const before = await counts();
    const withTtl = multipart([
      { name: 'purpose', value: 'batch' },
      { name: 'expires_after[anchor]', value: 'created_at' },
      { name: 'expires_after[seconds]', value: '7200' },
      { name: 'file', filename: 't.jsonl', data: () => [Buffer.from('{"a":1}\n')] },
    ]);
    const t = (await call(apps.postgres.url, 'POST', '/v1/files', keys.a.key, { type: withTtl.type, body: withTtl.body() })).body;
    expect((t.expires_at as number) - (t.created_at as number)).toBe(7200);
    const tooLong = multipart([
      { name: 'purpose', value: 'batch' },
      { name: 'expires_after[seconds]', value: String(31 * 86_400) },
      { name: 'file', filename: 't.jsonl', data: () => [Buffer.from('{"a":1}\n')] },
    ]);
    expect((await call(apps.postgres.url, 'POST', '/v1/files', keys.a.key, { type: tooLong.type, body: tooLong.body() })).status).toBe(400);
    const ids: string[] = [t.id as string];
    for (const app of [apps.postgres, apps.disk, apps.postgres, apps.disk]) {
      ids.push((await call(app.url, 'POST', '/v1/files?purpose=batch', keys.a.key, { type: JSONL, body: '{"a":1}\n' })).body.id as string);
    }
    const keep = (await call(apps.disk.url, 'POST', '/v1/files?purpose=batch', keys.a.key, { type: JSONL, body: '{"keep":1}\n' })).body.id as string;
    await sql(db.url, `UPDATE batch_file SET expires_at = now() - interval '1 second' WHERE id = ANY($1::text[])`, [ids]);
    // Expired is gone for the API at once, before any sweep.
    expect((await call(apps.postgres.url, 'GET', `/v1/files/${ids[0]}`, keys.a.key)).status).toBe(404);
    const swept = await Promise.all([apps.postgres, apps.disk, apps.postgres].map((a) => a.app.get(FileRetentionService).sweep()));
    expect(swept.reduce((x, y) => x + y, 0)).toBe(ids.length);
    const after = await counts();
    expect(after).toEqual({ ...before, rows: before.rows + 1, diskObjects: before.diskObjects + 1 });
    expect((await call(apps.disk.url, 'GET', `/v1/files/${keep}`, keys.a.key)).status).toBe(200);
    // An upload abandoned mid-way (its process died) is a row in 'uploading' past its grace: swept with its blob.
    await sql(
      db.url,
      `INSERT INTO batch_file (id, owner, purpose, filename, status, blob_store, blob_key, expires_at) VALUES ('file-dead', 'x', 'batch', 'f', 'uploading', 'disk', 'file-dead', now())`,
    );
    expect(await apps.disk.app.get(FileRetentionService).sweep()).toBe(1);
    await call(apps.disk.url, 'DELETE', `/v1/files/${keep}`, keys.a.key);
  });
});
