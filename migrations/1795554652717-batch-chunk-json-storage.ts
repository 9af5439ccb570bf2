import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Chunk items/outputs as `json` (stored text, returned verbatim) instead of `jsonb`, stored
 * uncompressed: large inputs (base64 images for `infer`) are read back once per chunk, and
 * jsonb's binary→text conversion plus pglz on incompressible data cost more than they save.
 */
export class BatchChunkJsonStorage1795554652717 implements MigrationInterface {
  name = 'BatchChunkJsonStorage1795554652717';

  async up(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE "batch_chunk" ALTER COLUMN "items" TYPE json USING "items"::json, ALTER COLUMN "outputs" TYPE json USING "outputs"::json');
    await q.query('ALTER TABLE "batch_chunk" ALTER COLUMN "items" SET STORAGE EXTERNAL, ALTER COLUMN "outputs" SET STORAGE EXTERNAL');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE "batch_chunk" ALTER COLUMN "items" SET STORAGE EXTENDED, ALTER COLUMN "outputs" SET STORAGE EXTENDED');
    await q.query('ALTER TABLE "batch_chunk" ALTER COLUMN "items" TYPE jsonb USING "items"::jsonb, ALTER COLUMN "outputs" TYPE jsonb USING "outputs"::jsonb');
  }
}
