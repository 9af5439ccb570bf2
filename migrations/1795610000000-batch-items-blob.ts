import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Issue 15 (the 30 M chord): an NDJSON chord upload is stored as one blob (blob store + key on
 * the batch) and its chunks as line-aligned byte ranges of it (`batch_chunk.start_byte/end_byte`,
 * `items` NULL), as file batches already are. Inline JSON chords keep their items in the rows.
 */
export class BatchItemsBlob1795610000000 implements MigrationInterface {
  name = 'BatchItemsBlob1795610000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "batch" ADD "items_blob_store" text`);
    await q.query(`ALTER TABLE "batch" ADD "items_blob_key" text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "batch" DROP COLUMN "items_blob_key"`);
    await q.query(`ALTER TABLE "batch" DROP COLUMN "items_blob_store"`);
  }
}
