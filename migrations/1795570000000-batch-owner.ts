import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Batches belong to the submitting key's principal. Rows from before get owner NULL: no key owns
 * them, so only admins see them. Idempotency keys become unique per owner; stored_bytes feeds the
 * per-key storage quota (NULL-owner rows count for nobody, so 0 is right for them).
 */
export class BatchOwner1795570000000 implements MigrationInterface {
  name = 'BatchOwner1795570000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE "batch" ADD "owner" text');
    await q.query('ALTER TABLE "batch" ADD "stored_bytes" bigint NOT NULL DEFAULT 0');
    await q.query('ALTER TABLE "batch" DROP CONSTRAINT "batch_idempotency_key_key"');
    await q.query('ALTER TABLE "batch" ADD CONSTRAINT "uq_batch_owner_idempotency_key" UNIQUE ("owner", "idempotency_key")');
    await q.query('CREATE INDEX "ix_batch_owner_seq" ON "batch" ("owner", "seq")');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP INDEX "ix_batch_owner_seq"');
    await q.query('ALTER TABLE "batch" DROP CONSTRAINT "uq_batch_owner_idempotency_key"');
    // Two owners may have used the same key; the oldest batch keeps it so the global UNIQUE fits again.
    await q.query(`
      UPDATE "batch" b SET "idempotency_key" = NULL
      WHERE "idempotency_key" IS NOT NULL
        AND EXISTS (SELECT 1 FROM "batch" o WHERE o."idempotency_key" = b."idempotency_key" AND o."seq" < b."seq")`);
    await q.query('ALTER TABLE "batch" ADD CONSTRAINT "batch_idempotency_key_key" UNIQUE ("idempotency_key")');
    await q.query('ALTER TABLE "batch" DROP COLUMN "stored_bytes"');
    await q.query('ALTER TABLE "batch" DROP COLUMN "owner"');
  }
}
