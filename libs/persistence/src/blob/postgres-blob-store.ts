import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Pool, PoolClient } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { DomainException, ErrorCode } from '@tandem/shared';
import { assertBlobKey, coalesce, resolveRange, type BlobInfo, type BlobStore, type ByteRange } from './blob-store';

const INV_WRITE = 0x20000;
/** Bytes per lowrite round trip: large enough to amortise it, small enough to stay flat. */
const WRITE_CHUNK = 1024 * 1024;
// Reads: 512 KiB per statement, so a batch chunk's payload read can pause between pieces
// (a batch worker whose units online just took back) after a few ms of Postgres work, not ~40.
const READ_CHUNK = 512 * 1024;
/** `COPY … (FORMAT binary)` framing: signature, flags, header extension length; then per row a field count and a field length. */
const COPY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/** What the store needs from node-postgres: the process's pool (PersistenceModule's `Pool`, see createPgPool). */
export type PgPool = Pick<Pool, 'connect' | 'query'>;

const UNIQUE_VIOLATION = '23505';

/**
 * Blobs as Postgres large objects, so every node reaches them through the Postgres it already
 * has. `blob_object` maps a key to its large object's oid (an `oid` column, which is also what
 * keeps `vacuumlo` from treating our objects as orphans). The node-postgres pool is used
 * directly, not TypeORM: its query logging would print megabyte parameters on an error.
 *
 * A put is one transaction (create, lo_open, lowrite per MiB, row insert), so a failed or
 * interrupted put rolls back with nothing left; it holds one pooled connection while the bytes
 * arrive. Reads are `lo_get(oid, offset, len)` per 512 KiB, each its own statement: a slow
 * reader holds no connection and no transaction between chunks, and a range is just offsets.
 * They run as `COPY (SELECT lo_get(…)) TO STDOUT (FORMAT binary)` (pg-copy-streams): a plain
 * SELECT returns bytea as hex text (node-pg has no binary results), which the event loop then
 * decodes: ~0.4 ms of CPU per 65 KB read, the largest cost of a file batch's chunk (profiled).
 */
export class PostgresBlobStore implements BlobStore {
  readonly kind = 'postgres' as const;

  constructor(private readonly pool: PgPool) {}

  async put(key: string, data: AsyncIterable<Uint8Array>): Promise<BlobInfo> {
    assertBlobKey(key);
    const client: PoolClient = await this.pool.connect();
    const hash = createHash('sha256');
    let size = 0;
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      // The row first: a second put of the same key waits on it, then fails, before any byte moves.
      const { rows } = await client.query<{ lo: number }>(`INSERT INTO blob_object (key, lo, size, sha256) VALUES ($1, lo_create(0), 0, '') RETURNING lo`, [
        key,
      ]);
      const lo = rows[0]!.lo;
      const fd = (await client.query<{ fd: number }>('SELECT lo_open($1, $2) AS fd', [lo, INV_WRITE])).rows[0]!.fd;
      for await (const piece of coalesce(data, WRITE_CHUNK)) {
        hash.update(piece);
        size += piece.length;
        await client.query('SELECT lowrite($1, $2)', [fd, piece]);
      }
      await client.query('SELECT lo_close($1)', [fd]);
      const sha256 = hash.digest('hex');
      await client.query('UPDATE blob_object SET size = $2, sha256 = $3 WHERE key = $1', [key, size, sha256]);
      await client.query('COMMIT');
      return { key, size, sha256 };
    } catch (e) {
      broken = await rollback(client);
      if ((e as { code?: string }).code === UNIQUE_VIOLATION) throw new DomainException(ErrorCode.Conflict, `blob ${key} already exists`);
      throw e;
    } finally {
      client.release(broken);
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const row = await this.row(key);
    if (!row) throw DomainException.notFound(`blob ${key} not found`);
    const { start, end } = resolveRange(row.size, range);
    const pool = this.pool;
    async function* chunks(): AsyncGenerator<Buffer> {
      for (let at = start; at < end; at += READ_CHUNK) {
        const len = Math.min(READ_CHUNK, end - at);
        yield await readLargeObject(pool, row!.lo, at, len);
      }
    }
    // objectMode off: Readable.from yields Buffers as bytes; highWaterMark 1 chunk keeps it pull-driven.
    return Readable.from(chunks(), { objectMode: false, highWaterMark: READ_CHUNK });
  }

  async size(key: string): Promise<number | null> {
    return (await this.row(key))?.size ?? null;
  }

  async exists(key: string): Promise<boolean> {
    return (await this.row(key)) !== null;
  }

  async delete(key: string): Promise<boolean> {
    assertBlobKey(key);
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ lo: number }>('DELETE FROM blob_object WHERE key = $1 RETURNING lo', [key]);
      if (rows[0]) await client.query('SELECT lo_unlink($1)', [rows[0].lo]);
      await client.query('COMMIT');
      return rows.length > 0;
    } catch (e) {
      broken = await rollback(client);
      throw e;
    } finally {
      client.release(broken);
    }
  }

  /** Nothing to do: an interrupted put is a rolled-back transaction. */
  async sweepPartials(): Promise<number> {
    return 0;
  }

  private async row(key: string): Promise<{ lo: number; size: number } | null> {
    assertBlobKey(key);
    const { rows } = await this.pool.query<{ lo: number; size: string }>('SELECT lo, size FROM blob_object WHERE key = $1', [key]);
    return rows[0] ? { lo: Number(rows[0].lo), size: Number(rows[0].size) } : null;
  }
}

/** Rolls back; returns the error when even that failed, so the caller drops the connection instead of pooling it. */
async function rollback(client: PoolClient): Promise<Error | undefined> {
  try {
    await client.query('ROLLBACK');
    return undefined;
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

/** `len` bytes at `at` of large object `lo`, as raw bytes (one binary COPY of one bytea value). */
async function readLargeObject(pool: PgPool, lo: number, at: number, len: number): Promise<Buffer> {
  for (const n of [lo, at, len]) if (!Number.isSafeInteger(n) || n < 0) throw new Error(`bad large-object read ${lo}@${at}+${len}`); // COPY takes no parameters
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    const parts: Buffer[] = [];
    for await (const c of client.query(copyTo(`COPY (SELECT lo_get(${lo}::oid, ${at}, ${len})) TO STDOUT WITH (FORMAT binary)`))) parts.push(c as Buffer);
    return copiedBytea(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  } catch (e) {
    broken = e as Error;
    throw e;
  } finally {
    client.release(broken);
  }
}

/** The one bytea field of a one-row binary COPY (a view, no copy). */
export function copiedBytea(b: Buffer): Buffer {
  if (b.length < 19 || !b.subarray(0, 11).equals(COPY_SIGNATURE)) throw new Error('not a binary COPY stream');
  let off = 15;
  off += 4 + b.readUInt32BE(off); // header extension
  if (b.readInt16BE(off) !== 1) throw new Error('binary COPY: expected one row of one field');
  const size = b.readInt32BE(off + 2);
  if (size < 0) throw new Error('binary COPY: the large object read returned NULL');
  const data = b.subarray(off + 6, off + 6 + size);
  if (data.length !== size || b.readInt16BE(off + 6 + size) !== -1) throw new Error('binary COPY: truncated stream');
  return data;
}
