import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Per-batch co-location policy: may its chunks run on online share that online is not using? */
export class BatchMayBorrow1795560000000 implements MigrationInterface {
  name = 'BatchMayBorrow1795560000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE "batch" ADD "may_borrow" boolean NOT NULL DEFAULT true');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE "batch" DROP COLUMN "may_borrow"');
  }
}
