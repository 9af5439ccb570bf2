import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Batches and their chunks: Postgres is the truth the queue is reconciled against. */
export class BatchChord1795552936121 implements MigrationInterface {
  name = 'BatchChord1795552936121';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "batch" (
        "id" uuid PRIMARY KEY,
        "seq" bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
        "idempotency_key" text UNIQUE,
        "task" text NOT NULL,
        "model" text,
        "reducer" text NOT NULL,
        "chunk_size" integer NOT NULL,
        "priority" integer NOT NULL DEFAULT 0,
        "failure_policy" text NOT NULL DEFAULT 'fail',
        "max_attempts" integer NOT NULL DEFAULT 3,
        "state" text NOT NULL,
        "item_count" bigint NOT NULL,
        "chunk_count" integer NOT NULL,
        "chunks_done" integer NOT NULL DEFAULT 0,
        "chunks_failed" integer NOT NULL DEFAULT 0,
        "items_done" bigint NOT NULL DEFAULT 0,
        "items_failed" bigint NOT NULL DEFAULT 0,
        "result" jsonb,
        "error" text,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "started_at" timestamptz,
        "finished_at" timestamptz,
        "progressed_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "ck_batch_state" CHECK ("state" IN ('submitting','queued','running','paused','succeeded','failed','cancelled'))
      )`);
    await q.query('CREATE INDEX "ix_batch_state_seq" ON "batch" ("state", "seq")');
    // One row per chunk holding its items (and later outputs) as arrays: 1M items = 1k rows.
    await q.query(`
      CREATE TABLE "batch_chunk" (
        "batch_id" uuid NOT NULL REFERENCES "batch"("id") ON DELETE CASCADE,
        "idx" integer NOT NULL,
        "first_item" bigint NOT NULL,
        "item_count" integer NOT NULL,
        "state" text NOT NULL DEFAULT 'pending',
        "items" jsonb NOT NULL,
        "outputs" jsonb,
        "partial" jsonb,
        "attempts" integer NOT NULL DEFAULT 0,
        "error" text,
        "finished_at" timestamptz,
        PRIMARY KEY ("batch_id", "idx"),
        CONSTRAINT "ck_batch_chunk_state" CHECK ("state" IN ('pending','done','dead','cancelled'))
      )`);
    await q.query(`CREATE INDEX "ix_batch_chunk_open" ON "batch_chunk" ("batch_id", "idx") WHERE "state" = 'pending'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE "batch_chunk"');
    await q.query('DROP TABLE "batch"');
  }
}
