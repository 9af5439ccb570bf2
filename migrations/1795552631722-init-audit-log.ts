import type { MigrationInterface, QueryRunner } from 'typeorm';

export class InitAuditLog1795552631722 implements MigrationInterface {
  name = 'InitAuditLog1795552631722';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "audit_log" (
        "id" bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        "at" timestamptz NOT NULL DEFAULT now(),
        "actor" text NOT NULL,
        "action" text NOT NULL,
        "target" text NOT NULL,
        "details" jsonb NOT NULL DEFAULT '{}'::jsonb
      )`);
    await q.query('CREATE INDEX "ix_audit_log_at" ON "audit_log" ("at")');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE "audit_log"');
  }
}
