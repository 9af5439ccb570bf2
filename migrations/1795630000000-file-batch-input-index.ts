import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Deleting or sweeping a file asks whether an unfinished file batch still reads it
 * (file.repository's UNFINISHED_INPUT, once per file row): without this index that is a scan of
 * every file batch ever kept.
 */
export class FileBatchInputIndex1795630000000 implements MigrationInterface {
  name = 'FileBatchInputIndex1795630000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query('CREATE INDEX "ix_file_batch_input_file" ON "file_batch" ("input_file_id")');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP INDEX "ix_file_batch_input_file"');
  }
}
