import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Issue 15: the Files API. `batch_file` holds each file's metadata and the reference to its bytes
 * (blob store + key), never the bytes. `blob_object` is the Postgres blob store's index: key →
 * large object. Its `lo` column has type `oid` so that `vacuumlo` sees the reference (it deletes
 * every large object no `oid`/`lo` column names). TypeORM has no `oid` column type, so
 * `blob_object` has no entity; only PostgresBlobStore touches it, with plain SQL.
 */
export class BatchFiles1795580000000 implements MigrationInterface {
  name = 'BatchFiles1795580000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "blob_object" (
        "key" text PRIMARY KEY,
        "lo" oid NOT NULL,
        "size" bigint NOT NULL,
        "sha256" text NOT NULL,
        "created_at" timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE "batch_file" (
        "id" text PRIMARY KEY,
        "seq" bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
        "owner" text NOT NULL,
        "purpose" text NOT NULL,
        "filename" text NOT NULL,
        "status" text NOT NULL CHECK ("status" IN ('uploading', 'processed')),
        "bytes" bigint NOT NULL DEFAULT 0,
        "line_count" integer NOT NULL DEFAULT 0,
        "sha256" text,
        "blob_store" text NOT NULL CHECK ("blob_store" IN ('postgres', 'disk')),
        "blob_key" text NOT NULL,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "expires_at" timestamptz NOT NULL
      )`);
    await q.query('CREATE INDEX "ix_batch_file_owner_seq" ON "batch_file" ("owner", "seq")');
    await q.query('CREATE INDEX "ix_batch_file_expires_at" ON "batch_file" ("expires_at")');
  }

  async down(q: QueryRunner): Promise<void> {
    // Large objects live outside the table: unlink them, or reverting would orphan every blob.
    await q.query('SELECT lo_unlink("lo") FROM "blob_object"');
    await q.query('DROP TABLE "batch_file"');
    await q.query('DROP TABLE "blob_object"');
  }
}
