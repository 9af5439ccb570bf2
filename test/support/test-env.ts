import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { runMigrations } from '@tandem/persistence';

// The test harness is the one place besides main.ts files allowed to read process.env.
export const TEST_PG_ADMIN_URL = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

function urlFor(db: string): string {
  const u = new URL(TEST_PG_ADMIN_URL);
  u.pathname = `/${db}`;
  return u.toString();
}

async function admin<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: TEST_PG_ADMIN_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * A fresh database per test file (migrated unless `migrate: false`), so files run in parallel
 * without sharing state. Drop it in afterAll.
 */
export async function createTestDatabase(opts: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `tandem_t_${randomBytes(5).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE "${name}"`));
  const url = urlFor(name);
  if (opts.migrate ?? true) await runMigrations(url);
  return {
    name,
    url,
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined),
  };
}

/** A unique BullMQ/Redis key prefix per test file. */
export function testQueuePrefix(): string {
  return `tt${randomBytes(4).toString('hex')}`;
}
