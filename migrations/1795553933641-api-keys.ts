import type { MigrationInterface, QueryRunner } from 'typeorm';

export class ApiKeys1795553933641 implements MigrationInterface {
  name = 'ApiKeys1795553933641';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "api_key" (
        "id" text PRIMARY KEY,
        "name" text NOT NULL,
        "hash" text NOT NULL,
        "scopes" text[] NOT NULL,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "created_by" text NOT NULL,
        "revoked_at" timestamptz NULL,
        CONSTRAINT "ck_api_key_scopes" CHECK ("scopes" <@ ARRAY['infer','batch','admin']::text[] AND cardinality("scopes") > 0)
      )`);
    await q.query('CREATE UNIQUE INDEX "ux_api_key_hash" ON "api_key" ("hash")');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE "api_key"');
  }
}
