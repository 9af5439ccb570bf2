import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBatch } from '../apps/batch/src/bootstrap';
import { createTestDatabase, testQueuePrefix, type TestDatabase } from './support/test-env';
import { batchEnv, deleteQueueKeys, startTestBatch, waitForState } from './support/batch-harness';

/** NDJSON chords: the upload is one blob, chunks are byte ranges of it (offsets only in Postgres). */
describe('chord NDJSON uploads as a blob with byte-range chunks (real Postgres + Redis)', () => {
  let db: TestDatabase;
  let prefix = '';
  let app: RunningBatch;
  let base: string;
  let pg: Client;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestBatch(batchEnv(db.url, (prefix = testQueuePrefix())));
    base = app.url;
    pg = new Client({ connectionString: db.url });
    await pg.connect();
  });

  afterAll(async () => {
    await pg?.end();
    await app?.app.close();
    await db?.drop();
    if (prefix) await deleteQueueKeys(prefix);
  });

  const blobs = async (): Promise<number> => Number((await pg.query('SELECT count(*) AS n FROM blob_object')).rows[0].n);
  const upload = (body: string, q = 'task=score&reducer=concat&chunkSize=7'): Promise<Response> =>
    fetch(`${base}/v1/batches?${q}`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });

  it('stores offsets only, reads each range back when the chunk runs: outputs in item order, exact', async () => {
    // Blank lines, CRLF, padding and a last line without a newline: every chunk still holds 7 items.
    const lines = Array.from({ length: 100 }, (_, i) => (i % 9 === 0 ? `  ${i}\r` : String(i)));
    lines.splice(50, 0, '', '   ');
    const res = await upload(`\n${lines.join('\n')}`);
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const done = await waitForState(base, id, ['succeeded', 'failed']);
    expect(done.state).toBe('succeeded');
    expect(done.result).toEqual(Array.from({ length: 100 }, (_, i) => i * i));
    expect(done.counts).toMatchObject({ items: 100, chunks: 15 });
    const rows = (
      await pg.query(`SELECT idx, first_item, item_count, start_byte, end_byte, items::text AS items FROM batch_chunk WHERE batch_id = $1 ORDER BY idx`, [id])
    ).rows;
    expect(rows.every((r) => r.items === '[]' && r.start_byte !== null)).toBe(true);
    expect(rows.map((r) => Number(r.first_item))).toEqual(Array.from({ length: 15 }, (_, i) => i * 7));
    const out = (await (await fetch(`${base}/v1/batches/${id}/results`)).text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { index: number; output: number });
    expect(out.every((o, i) => o.index === i && o.output === i * i)).toBe(true);
    const b = (await pg.query(`SELECT items_blob_key, stored_bytes FROM batch WHERE id = $1`, [id])).rows[0];
    expect(b.items_blob_key).toMatch(/^items-/);

    // Deleting the batch deletes its blob.
    const before = await blobs();
    expect((await fetch(`${base}/v1/batches/${id}`, { method: 'DELETE' })).status).toBe(204);
    expect(await blobs()).toBe(before - 1);
    expect((await pg.query('SELECT 1 FROM blob_object WHERE key = $1', [b.items_blob_key])).rows.length).toBe(0);
  });

  it('a rejected upload (a bad line late, an invalid item) leaves no blob and no batch', async () => {
    const before = await blobs();
    const many = Array.from({ length: 20_000 }, (_, i) => String(i)).join('\n');
    const bad = await upload(`${many}\n{oops\n`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/line 20001: malformed JSON/);
    const invalid = await upload(`${many}\n1.5\n`);
    expect(invalid.status).toBe(400);
    expect(((await invalid.json()) as { error: string }).error).toMatch(/line 20001: must be an integer/);
    const empty = await upload('\n\n');
    expect(empty.status).toBe(400);
    expect(await blobs()).toBe(before);
    expect(Number((await pg.query(`SELECT count(*) AS n FROM batch WHERE items_blob_key IS NOT NULL AND state <> 'succeeded'`)).rows[0].n)).toBe(0);
  });
});
