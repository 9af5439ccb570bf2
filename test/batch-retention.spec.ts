import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyService } from '@tandem/auth';
import type { RunningBatch } from '../apps/batch/src/bootstrap';
import { FileRetentionService } from '../apps/batch/src/files/file-retention.service';
import { createTestDatabase, testQueuePrefix, type TestDatabase } from './support/test-env';
import { batchEnv, deleteQueueKeys, startTestBatch } from './support/batch-harness';
import { api, slowModelEnv, uploadJsonl, type OpenAiBatch, writeSlowModel } from './support/file-batches-harness';
import { tempModelRepo, type TempRepo } from './support/model-repo';

const ADMIN_KEY = 'retention-admin-key-0123456789abcdef';
const SCORER = '/v2/models/scorer/infer';
const SLOW = '/v2/models/slow/infer';
const line = (i: number, url = SCORER): Record<string, unknown> => ({
  custom_id: `r${i}`,
  method: 'POST',
  url,
  body: { inputs: [{ name: 'x', shape: [1, 1], datatype: 'FP32', data: [i / 10] }] },
});
const STORED_QUOTA = 50_000;

describe('retention, deletion, quotas and ranges of files and file batches (auth on)', () => {
  let db: TestDatabase;
  let prefix = '';
  let app: RunningBatch;
  let repo: TempRepo;
  let pg: Client;
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = testQueuePrefix();
    repo = tempModelRepo({ scorer: { from: 'scorer', config: {} } });
    writeSlowModel(repo.dir);
    app = await startTestBatch(
      batchEnv(
        db.url,
        prefix,
        slowModelEnv(ADMIN_KEY, repo.dir, {
          BATCH_RETENTION_DAYS: '2',
          BATCH_QUOTA_CONCURRENT_BATCHES: '0',
          BATCH_QUOTA_QUEUED_ITEMS: '50',
          BATCH_QUOTA_STORED_MB: String(STORED_QUOTA / 1024 / 1024),
        }),
      ),
    );
    const svc = app.app.get(ApiKeyService);
    for (const name of ['ret', 'exp', 'busy', 'quota', 'store', 'range']) keys[name] = (await svc.create(`retention-${name}`, ['batch'], 'test')).key;
    pg = new Client({ connectionString: db.url });
    await pg.connect();
  }, 120_000);

  afterAll(async () => {
    await pg?.end();
    repo?.remove();
    await app?.app.close();
    await db?.drop();
    if (prefix) await deleteQueueKeys(prefix);
  });

  const create = (key: string, file: string, endpoint = SCORER) =>
    api(app.url, 'POST', '/v1/batches', { input_file_id: file, endpoint, completion_window: '24h' }, key);
  const get = async (key: string, id: string): Promise<OpenAiBatch> =>
    (await api(app.url, 'GET', `/v1/batches/${id}`, undefined, key)).body as unknown as OpenAiBatch;
  const waitDone = async (key: string, id: string, statuses = ['completed']): Promise<OpenAiBatch> => {
    for (const deadline = Date.now() + 120_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
      const b = await get(key, id);
      if (statuses.includes(b.status)) return b;
    }
    throw new Error(`batch ${id} did not reach ${statuses.join('/')}`);
  };
  const blobKeys = async (): Promise<Set<string>> => new Set((await pg.query<{ key: string }>('SELECT key FROM blob_object')).rows.map((r) => r.key));

  it('output and error files expire with BATCH_RETENTION_DAYS; DELETE of a file batch removes them, their bytes and its parts', async () => {
    const key = keys.ret!;
    const input = await uploadJsonl(app.url, [line(0), line(1), { ...line(2), method: 'GET' }], key);
    const created = await create(key, input);
    expect(created.status).toBe(200);
    const b = await waitDone(key, created.body.id as string);
    expect(b.output_file_id).toMatch(/^file-/);
    expect(b.error_file_id).toMatch(/^file-/);
    for (const f of [b.output_file_id!, b.error_file_id!]) {
      const view = (await api(app.url, 'GET', `/v1/files/${f}`, undefined, key)).body;
      expect(Math.abs((view.expires_at as number) - (Date.now() / 1000 + 2 * 86_400))).toBeLessThan(120);
    }
    const before = await blobKeys();
    expect(before.has(b.output_file_id!) && before.has(b.error_file_id!)).toBe(true);

    expect((await api(app.url, 'DELETE', `/v1/batches/${b.id}`, undefined, keys.exp)).status).toBe(404); // another key's
    expect((await api(app.url, 'DELETE', `/v1/batches/${b.id}`, undefined, key)).status).toBe(204);
    expect((await api(app.url, 'GET', `/v1/batches/${b.id}`, undefined, key)).status).toBe(404);
    for (const f of [b.output_file_id!, b.error_file_id!]) expect((await api(app.url, 'GET', `/v1/files/${f}/content`, undefined, key)).status).toBe(404);
    const after = await blobKeys();
    expect(after.has(b.output_file_id!) || after.has(b.error_file_id!)).toBe(false);
    const uuid = b.id.slice(6).replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-');
    expect((await pg.query('SELECT 1 FROM file_batch_blob WHERE batch_id = $1', [uuid])).rowCount).toBe(0);
    expect((await pg.query('SELECT 1 FROM batch_chunk WHERE batch_id = $1', [uuid])).rowCount).toBe(0);
    // The input is the caller's own file: it stays.
    expect((await api(app.url, 'GET', `/v1/files/${input}`, undefined, key)).status).toBe(200);
  });

  it('a batch whose output expired and was swept no longer links it', async () => {
    const key = keys.exp!;
    const b = await waitDone(key, (await create(key, await uploadJsonl(app.url, [line(0), line(1)], key))).body.id as string);
    expect(b.output_file_id).toMatch(/^file-/);
    await pg.query(`UPDATE batch_file SET expires_at = now() - interval '1 second' WHERE id = $1`, [b.output_file_id]);
    expect((await get(key, b.id)).output_file_id).toBeNull(); // expired: not linked even before the sweep
    expect(await app.app.get(FileRetentionService).sweep()).toBeGreaterThanOrEqual(1);
    expect((await blobKeys()).has(b.output_file_id!)).toBe(false);
    const after = await get(key, b.id);
    expect([after.status, after.output_file_id, after.request_counts.completed]).toEqual(['completed', null, 2]);
    expect((await api(app.url, 'GET', `/v1/files/${b.output_file_id}`, undefined, key)).status).toBe(404);
  });

  it('an input file cannot be deleted (409) nor swept while a batch over it runs', async () => {
    const key = keys.busy!;
    const input = await uploadJsonl(
      app.url,
      Array.from({ length: 40 }, (_, i) => line(i, SLOW)),
      key,
    );
    const created = await create(key, input, SLOW);
    const id = created.body.id as string;
    const del = await api(app.url, 'DELETE', `/v1/files/${input}`, undefined, key);
    expect(del.status).toBe(409);
    expect(del.body.error).toMatch(
      new RegExp(
        `^file ${input} is the input of batch ${id}, which has not finished \\((queued|running)\\); cancel it \\(POST /v1/batches/${id}/cancel\\) or wait for it to end, then delete the file$`,
      ),
    );
    // Expired meanwhile: hidden from the API, but its bytes stay until the batch ends.
    await pg.query(`UPDATE batch_file SET expires_at = now() - interval '1 second' WHERE id = $1`, [input]);
    await app.app.get(FileRetentionService).sweep();
    expect((await blobKeys()).has(input)).toBe(true);
    expect((await api(app.url, 'DELETE', `/v1/batches/${id}`, undefined, key)).status).toBe(409); // not finished
    await pg.query(`UPDATE batch_file SET expires_at = now() + interval '1 hour' WHERE id = $1`, [input]);
    expect((await api(app.url, 'POST', `/v1/batches/${id}/cancel`, undefined, key)).status).toBe(200);
    await waitDone(key, id, ['cancelled']);
    expect((await api(app.url, 'DELETE', `/v1/files/${input}`, undefined, key)).status).toBe(200);
  });

  it('file batches count towards the queued-items quota; files towards the stored-bytes quota (413)', async () => {
    const key = keys.quota!;
    const big = await uploadJsonl(
      app.url,
      Array.from({ length: 51 }, (_, i) => line(i)),
      key,
    );
    const over = await create(key, big);
    expect(over.status).toBe(429);
    expect(over.body.error).toBe('quota exceeded: at most 50 queued items per key (0 already queued, this batch has more than 50); wait for batches to finish');
    expect((await api(app.url, 'GET', '/v1/batches', undefined, key)).body.data).toEqual([]);

    const store = keys.store!;
    const pad = 'x'.repeat(900);
    const lines = (n: number) => Array.from({ length: n }, (_, i) => ({ ...line(i), pad }));
    await uploadJsonl(app.url, lines(30), store); // ~30 KB of 50,000
    const res = await fetch(`${app.url}/v1/files?purpose=batch&filename=more.jsonl`, {
      method: 'POST',
      headers: { 'content-type': 'application/jsonl', authorization: `Bearer ${store}` },
      body:
        lines(30)
          .map((l) => JSON.stringify(l))
          .join('\n') + '\n',
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: string }).error).toMatch(
      /^quota exceeded: this key's files and batch data would take more than 50000 bytes \(\d+ stored already\); delete files/,
    );
    expect((await api(app.url, 'GET', '/v1/files', undefined, store)).body.data).toHaveLength(1);
    // Admins are exempt.
    await uploadJsonl(app.url, lines(60), ADMIN_KEY);
  });

  it('serves HTTP ranges of a file (206, suffix, open end; 416 past the end)', async () => {
    const key = keys.range!;
    const id = await uploadJsonl(app.url, [line(0), line(1)], key);
    const whole = await (await fetch(`${app.url}/v1/files/${id}/content`, { headers: { authorization: `Bearer ${key}` } })).text();
    const ranged = async (range: string): Promise<{ status: number; text: string; cr: string | null }> => {
      const r = await fetch(`${app.url}/v1/files/${id}/content`, { headers: { authorization: `Bearer ${key}`, range } });
      return { status: r.status, cr: r.headers.get('content-range'), text: await r.text() };
    };
    expect(await ranged('bytes=0-9')).toEqual({ status: 206, cr: `bytes 0-9/${whole.length}`, text: whole.slice(0, 10) });
    expect(await ranged('bytes=-5')).toEqual({ status: 206, cr: `bytes ${whole.length - 5}-${whole.length - 1}/${whole.length}`, text: whole.slice(-5) });
    expect(await ranged('bytes=20-')).toEqual({ status: 206, cr: `bytes 20-${whole.length - 1}/${whole.length}`, text: whole.slice(20) });
    expect((await ranged(`bytes=${whole.length}-`)).status).toBe(416);
    expect(await ranged('bytes=0-1,4-5')).toMatchObject({ status: 200, text: whole }); // several ranges: the whole file
  });
});
