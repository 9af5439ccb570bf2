import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataSource } from 'typeorm';
import { buildDataSourceOptions, runMigrations } from '@tandem/persistence';
import { MIGRATIONS } from '../migrations';
import { createTestDatabase, type TestDatabase } from './support/test-env';

async function tables(ds: DataSource): Promise<string[]> {
  const rows: { table_name: string }[] = await ds.query(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'typeorm_migrations' ORDER BY 1",
  );
  return rows.map((r) => r.table_name);
}

describe('migrations', () => {
  let db: TestDatabase;
  let ds: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
    ds = await new DataSource(buildDataSourceOptions({ url: db.url, poolSize: 2 })).initialize();
  });
  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  it('run, revert every one, and run again round-trips to the same schema', async () => {
    expect(await tables(ds)).toEqual([]);
    const applied = await runMigrations(db.url);
    expect(applied).toHaveLength(MIGRATIONS.length);
    const schema = await tables(ds);
    expect(schema).toContain('audit_log');

    for (let i = 0; i < MIGRATIONS.length; i++) await ds.undoLastMigration({ transaction: 'each' });
    expect(await tables(ds)).toEqual([]);
    expect(await ds.query('SELECT count(*)::int AS n FROM typeorm_migrations')).toEqual([{ n: 0 }]);

    expect(await runMigrations(db.url)).toHaveLength(MIGRATIONS.length);
    expect(await tables(ds)).toEqual(schema);
    expect(await runMigrations(db.url)).toEqual([]);
  });

  it('the entities match the migrated tables and columns (nothing for migration:generate to add)', async () => {
    await runMigrations(db.url);
    const pending = await ds.driver.createSchemaBuilder().log();
    // Hand-written CHECKs, partial indexes and FKs the entities do not declare are fine;
    // a missing table or a column of another type/nullability is drift.
    const drift = pending.upQueries.map((q) => q.query).filter((q) => /(ADD|DROP|ALTER) COLUMN|CREATE TABLE|DROP TABLE/.test(q));
    expect(drift).toEqual([]);
  });

  it('migration names are unique and timestamps ascend', () => {
    const stamps = MIGRATIONS.map((m) => Number(/(\d{13})$/.exec(m.name)?.[1]));
    expect(stamps.every((s) => Number.isFinite(s))).toBe(true);
    expect([...stamps].sort((a, b) => a - b)).toEqual(stamps);
    expect(new Set(MIGRATIONS.map((m) => m.name)).size).toBe(MIGRATIONS.length);
  });
});
