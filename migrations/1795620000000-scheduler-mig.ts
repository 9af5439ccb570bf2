import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Issue 17: MIG devices are schedulable devices of their own. A MIG device row names its parent
 * GPU, profile and MIG device index; every GPU row its compute fraction (thousandths).
 */
export class SchedulerMig1795620000000 implements MigrationInterface {
  name = 'SchedulerMig1795620000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "sched_device" ADD "parent_gpu_uuid" text`);
    await q.query(`ALTER TABLE "sched_device" ADD "mig_profile" text`);
    await q.query(`ALTER TABLE "sched_device" ADD "mig_device_index" int`);
    await q.query(`ALTER TABLE "sched_device" ADD "compute_milli" int CHECK ("compute_milli" IS NULL OR ("compute_milli" > 0 AND "compute_milli" <= 1000))`);
    // Whole GPUs registered before this migration are whole GPUs.
    await q.query(`UPDATE "sched_device" SET "compute_milli" = 1000 WHERE "kind" = 'gpu'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "sched_device" DROP COLUMN "compute_milli"`);
    await q.query(`ALTER TABLE "sched_device" DROP COLUMN "mig_device_index"`);
    await q.query(`ALTER TABLE "sched_device" DROP COLUMN "mig_profile"`);
    await q.query(`ALTER TABLE "sched_device" DROP COLUMN "parent_gpu_uuid"`);
  }
}
