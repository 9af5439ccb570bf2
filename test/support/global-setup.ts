import { Client } from 'pg';
import { Redis } from 'ioredis';
import { TEST_PG_ADMIN_URL, TEST_REDIS_URL } from './test-env';

/** Fail the whole run loudly (not test by test) when Postgres or Redis is not answering. */
export default async function setup(): Promise<void> {
  const pg = new Client({ connectionString: TEST_PG_ADMIN_URL, connectionTimeoutMillis: 3_000 });
  try {
    await pg.connect();
    await pg.query('SELECT 1');
  } catch (e) {
    throw new Error(`tests need Postgres at ${TEST_PG_ADMIN_URL}: ${(e as Error).message}`);
  } finally {
    await pg.end().catch(() => undefined);
  }
  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    await redis.ping();
  } catch (e) {
    throw new Error(`tests need Redis at ${TEST_REDIS_URL}: ${(e as Error).message}`);
  } finally {
    redis.disconnect();
  }
}
