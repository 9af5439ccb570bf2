import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Issue 15, part 2: batches over files (OpenAI's Batch API). A file batch is a `batch` row of
 * kind `file` plus its `file_batch` row; its chunks are byte ranges of the input file (never the
 * payload) and, once done, name their output/error part blobs. `file_batch_blob` lists every part
 * blob a chunk attempt wrote (committed or not), so the finalizer can delete them all.
 */
export class FileBatches1795590000000 implements MigrationInterface {
  name = 'FileBatches1795590000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "batch" ADD "kind" text NOT NULL DEFAULT 'chord'`);
    await q.query('ALTER TABLE "batch" DROP CONSTRAINT "ck_batch_state"');
    await q.query(`ALTER TABLE "batch" ADD CONSTRAINT "ck_batch_state" CHECK ("state" IN
      ('submitting','queued','running','paused','succeeded','failed','cancelled','finalizing','cancelling','expiring','expired'))`);
    await q.query('ALTER TABLE "batch_chunk" ADD "start_byte" bigint');
    await q.query('ALTER TABLE "batch_chunk" ADD "end_byte" bigint');
    await q.query('ALTER TABLE "batch_chunk" ADD "output_part" text');
    await q.query('ALTER TABLE "batch_chunk" ADD "error_part" text');
    await q.query(`
      CREATE TABLE "file_batch" (
        "batch_id" uuid PRIMARY KEY REFERENCES "batch" ("id") ON DELETE CASCADE,
        "input_file_id" text NOT NULL,
        "input_blob_store" text NOT NULL,
        "input_blob_key" text NOT NULL,
        "endpoint" text NOT NULL,
        "model" text NOT NULL,
        "version" text,
        "completion_window" text NOT NULL,
        "expires_at" timestamptz NOT NULL,
        "metadata" jsonb,
        "line_count" integer NOT NULL,
        "duplicate_lines" jsonb NOT NULL DEFAULT '[]',
        "requests_completed" integer NOT NULL DEFAULT 0,
        "requests_failed" integer NOT NULL DEFAULT 0,
        "output_file_id" text,
        "error_file_id" text,
        "finalizing_at" timestamptz,
        "cancelling_at" timestamptz
      )`);
    await q.query('CREATE INDEX "ix_file_batch_expires_at" ON "file_batch" ("expires_at")');
    await q.query(`
      CREATE TABLE "file_batch_blob" (
        "blob_key" text PRIMARY KEY,
        "batch_id" uuid NOT NULL,
        "blob_store" text NOT NULL,
        "created_at" timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query('CREATE INDEX "ix_file_batch_blob_batch" ON "file_batch_blob" ("batch_id")');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE "file_batch_blob"');
    await q.query('DROP TABLE "file_batch"');
    await q.query(`DELETE FROM "batch" WHERE "kind" = 'file'`);
    for (const c of ['start_byte', 'end_byte', 'output_part', 'error_part']) await q.query(`ALTER TABLE "batch_chunk" DROP COLUMN "${c}"`);
    await q.query('ALTER TABLE "batch" DROP CONSTRAINT "ck_batch_state"');
    await q.query(
      `ALTER TABLE "batch" ADD CONSTRAINT "ck_batch_state" CHECK ("state" IN ('submitting','queued','running','paused','succeeded','failed','cancelled'))`,
    );
    await q.query('ALTER TABLE "batch" DROP COLUMN "kind"');
  }
}
