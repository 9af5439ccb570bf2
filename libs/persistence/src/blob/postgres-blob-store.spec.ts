import { randomBytes } from 'node:crypto';
import { Pool } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DomainException, ErrorCode } from '@tandem/shared';
import { createTestDatabase, type TestDatabase } from '../../../../test/support/test-env';
import { blobStoreContract, newKey, pieces } from './blob-store.contract';
import { copiedBytea, PostgresBlobStore } from './postgres-blob-store';

describe('PostgresBlobStore (real Postgres, large objects)', () => {
  let db: TestDatabase;
  let pool: Pool;
  let store: PostgresBlobStore;

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = new Pool({ connectionString: db.url, max: 4 });
    store = new PostgresBlobStore(pool);
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  const largeObjects = async (): Promise<number> => Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM pg_largeobject_metadata')).rows[0]!.n);

  blobStoreContract(() => store);

  it('a failed put rolls back its large object; delete unlinks it; the pool gets its connections back', async () => {
    const before = await largeObjects();
    async function* failing(): AsyncGenerator<Buffer> {
      yield randomBytes(3 * 1024 * 1024);
      throw new DomainException(ErrorCode.PayloadTooLarge, 'over');
    }
    await expect(store.put(newKey(), failing())).rejects.toThrow('over');
    expect(await largeObjects()).toBe(before);
    const key = newKey();
    await store.put(key, pieces(randomBytes(10_000)));
    expect(await largeObjects()).toBe(before + 1);
    await store.delete(key);
    expect(await largeObjects()).toBe(before);
    expect(pool.idleCount + pool.waitingCount).toBe(pool.totalCount);
  });

  it('a reader of a range holds no connection between chunks (4 readers on a pool of 4 plus a put)', async () => {
    const data = randomBytes(2 * 1024 * 1024);
    const key = newKey();
    await store.put(key, pieces(data));
    const readers = await Promise.all([0, 1, 2, 3].map((i) => store.get(key, { start: i * 1000 })));
    // Each reader has read one chunk and is paused; a put still gets a connection.
    await Promise.all(readers.map((r) => new Promise((ok) => r.once('readable', ok))));
    await store.put(newKey(), pieces(Buffer.from('still room')));
    for (const r of readers) r.destroy();
  });

  it('the oid is kept in an oid column (vacuumlo sees it as referenced)', async () => {
    const { rows } = await pool.query<{ t: string }>(
      `SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'blob_object'::regclass AND attname = 'lo'`,
    );
    expect(rows[0]!.t).toBe('oid');
  });

  it('reads the binary COPY framing Postgres sends, and refuses anything else', () => {
    {
      // What `COPY (SELECT '\x00ff0a'::bytea) TO STDOUT (FORMAT binary)` sends, byte for byte.
      const sig = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
      const frame = (body: Buffer): Buffer => Buffer.concat([sig, Buffer.alloc(8), body]);
      const field = Buffer.concat([Buffer.from([0, 1, 0, 0, 0, 3, 0x00, 0xff, 0x0a]), Buffer.from([0xff, 0xff])]);
      expect([...copiedBytea(frame(field))]).toEqual([0x00, 0xff, 0x0a]);
      expect(() => copiedBytea(Buffer.from('\\x00ff0a'))).toThrow('not a binary COPY stream');
      expect(() => copiedBytea(frame(field.subarray(0, 8)))).toThrow('truncated');
      expect(() => copiedBytea(frame(Buffer.from([0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])))).toThrow('NULL');
    }
  });
});
