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
    drop: () =>
      admin(async (c) => {
        // pg-pool's end() resolves before its clients' sockets close; a FORCE drop at once would
        // terminate those backends, and a client ending without an error listener throws
        // "terminating connection due to administrator command" into whatever test runs next.
        // Give them up to 2 s to leave, then force what is left (a test that leaked a client).
        for (let i = 0; i < 40; i++) {
          const { rows } = await c.query<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1', [name]);
          if (Number(rows[0]!.n) === 0) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      }),
  };
}

/** A unique BullMQ/Redis key prefix per test file. */
export function testQueuePrefix(): string {
  return `tt${randomBytes(4).toString('hex')}`;
}
