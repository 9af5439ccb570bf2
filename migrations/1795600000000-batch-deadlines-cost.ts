import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Issue 15, parts 4 and 5: deadlines and cost attribution. `batch` gains the device-seconds its
 * runs held units, split owned/borrowed (bumped once per chunk attempt), and the admission
 * estimate of a file batch (null: no throughput measured yet, or no owned batch share).
 * `batch_owner_usage` keeps per-key totals that outlive deleted batches; `batch_throughput` is
 * the rolling per-unit rate of each model on each device kind (decayed sums of lines and
 * unit-seconds from committed chunks), shared by every worker and API process.
 */
export class BatchDeadlinesCost1795600000000 implements MigrationInterface {
  name = 'BatchDeadlinesCost1795600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "batch" ADD "device_owned_s" double precision NOT NULL DEFAULT 0`);
    await q.query(`ALTER TABLE "batch" ADD "device_borrowed_s" double precision NOT NULL DEFAULT 0`);
    await q.query(`ALTER TABLE "batch" ADD "estimate" jsonb`);
    await q.query(`
      CREATE TABLE "batch_owner_usage" (
        "owner" text PRIMARY KEY,
        "device_owned_s" double precision NOT NULL DEFAULT 0,
        "device_borrowed_s" double precision NOT NULL DEFAULT 0,
        "updated_at" timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE "batch_throughput" (
        "model" text NOT NULL,
        "device_kind" text NOT NULL,
        "items" double precision NOT NULL,
        "unit_seconds" double precision NOT NULL,
        "samples" integer NOT NULL DEFAULT 1,
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY ("model", "device_kind")
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE "batch_throughput"');
    await q.query('DROP TABLE "batch_owner_usage"');
    await q.query('ALTER TABLE "batch" DROP COLUMN "estimate"');
    await q.query('ALTER TABLE "batch" DROP COLUMN "device_borrowed_s"');
    await q.query('ALTER TABLE "batch" DROP COLUMN "device_owned_s"');
  }
}
