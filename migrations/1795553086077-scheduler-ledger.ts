import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The device ledger: nodes, devices (with their online/batch partition) and leased allocations. */
export class SchedulerLedger1795553086077 implements MigrationInterface {
  name = 'SchedulerLedger1795553086077';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "sched_node" (
        "name" text PRIMARY KEY,
        "status" text NOT NULL DEFAULT 'alive' CHECK ("status" IN ('alive', 'lost', 'left')),
        "hostname" text NOT NULL,
        "pid" int,
        "registered_at" timestamptz NOT NULL DEFAULT now(),
        "last_heartbeat_at" timestamptz NOT NULL DEFAULT now(),
        "info" jsonb NOT NULL DEFAULT '{}'::jsonb
      )`);
    await q.query(`
      CREATE TABLE "sched_device" (
        "id" text PRIMARY KEY,
        "node_name" text NOT NULL REFERENCES "sched_node" ("name") ON DELETE CASCADE,
        "local_id" text NOT NULL,
        "kind" text NOT NULL CHECK ("kind" IN ('gpu', 'cpu')),
        "source" text NOT NULL CHECK ("source" IN ('discovered', 'declared')),
        "model" text NOT NULL,
        "gpu_index" int,
        "gpu_uuid" text,
        "mig_mode" text,
        "cores" int CHECK ("cores" IS NULL OR "cores" > 0),
        "memory_mib" int NOT NULL CHECK ("memory_mib" >= 0),
        "online_milli" int NOT NULL DEFAULT 500,
        "batch_milli" int NOT NULL DEFAULT 500,
        "batch_may_borrow" boolean NOT NULL DEFAULT true,
        "drained" boolean NOT NULL DEFAULT false,
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "ck_sched_device_partition" CHECK (
          "online_milli" >= 0 AND "batch_milli" >= 0 AND "online_milli" + "batch_milli" <= 1000)
      )`);
    await q.query('CREATE INDEX "ix_sched_device_node" ON "sched_device" ("node_name")');
    await q.query(`
      CREATE TABLE "sched_allocation" (
        "id" uuid PRIMARY KEY,
        "group_id" uuid NOT NULL,
        "device_id" text NOT NULL REFERENCES "sched_device" ("id") ON DELETE CASCADE,
        "kind" text NOT NULL CHECK ("kind" IN ('online', 'batch')),
        "state" text NOT NULL CHECK ("state" IN ('pending', 'active', 'revoking')),
        "share_milli" int NOT NULL CHECK ("share_milli" > 0 AND "share_milli" <= 1000),
        "memory_mib" int NOT NULL DEFAULT 0 CHECK ("memory_mib" >= 0),
        "borrowed" boolean NOT NULL DEFAULT false,
        "holder" text NOT NULL,
        "holder_node" text,
        "lease_expires_at" timestamptz NOT NULL,
        "revoke_deadline" timestamptz,
        "created_at" timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query('CREATE INDEX "ix_sched_allocation_device" ON "sched_allocation" ("device_id")');
    await q.query('CREATE INDEX "ix_sched_allocation_lease" ON "sched_allocation" ("lease_expires_at")');
    await q.query('CREATE INDEX "ix_sched_allocation_group" ON "sched_allocation" ("group_id")');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE "sched_allocation"');
    await q.query('DROP TABLE "sched_device"');
    await q.query('DROP TABLE "sched_node"');
  }
}
