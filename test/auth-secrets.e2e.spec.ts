import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, spawnNode } from './support/processes';
import { createTestDatabase, type TestDatabase } from './support/test-env';

// `npm test` builds first: these run the compiled entry points, as a deployment does.
const GATEWAY = resolve(process.cwd(), 'dist/apps/gateway/src/main.js');
const BATCH = resolve(process.cwd(), 'dist/apps/batch/src/main.js');
const START = resolve(process.cwd(), 'dist/scripts/start.js');

const SECRETS = ['db-pass-123', 'redis-pass-456', 'admin-key-789'];
const BAD = {
  DATABASE_URL: 'mysql://admin:db-pass-123@db.internal/app',
  REDIS_URL: 'http://:redis-pass-456@cache.internal',
  TANDEM_ADMIN_KEY: 'admin-key-789', // too short: a config error about a secret
  GATEWAY_PORT: 'abc',
  BATCH_PORT: 'abc',
  LOG_LEVEL: 'silent',
};

async function run(script: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const p = spawnNode(script, env);
  const { code } = await p.exited;
  return { code, output: p.output() };
}

describe('secrets are never printed', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
  });

  afterAll(async () => {
    await db?.drop();
  });

  it.each([
    ['gateway', GATEWAY],
    ['batch', BATCH],
  ])('the %s app names each bad variable, exits 2, and shows no password or key', async (_name, script) => {
    const { code, output } = await run(script, BAD);
    expect(code, output).toBe(2);
    for (const s of SECRETS) expect(output).not.toContain(s);
    expect(output).toContain('DATABASE_URL: must be a postgres:// URL (got "mysql://admin:***@db.internal/app")');
    expect(output).toContain('REDIS_URL: must be a redis:// URL (got "http://:***@cache.internal")');
    expect(output).toContain('TANDEM_ADMIN_KEY: must be at least 16 characters (value hidden)');
  });

  it('npm start: config errors and "does not answer" lines carry no password', async () => {
    const bad = await run(START, { ...BAD, TANDEM_MALLOC: 'system' });
    expect(bad.code, bad.output).toBe(2);
    for (const s of SECRETS) expect(bad.output).not.toContain(s);
    expect(bad.output).toContain('mysql://admin:***@db.internal/app');

    // A real database, and a Redis URL with a password where nothing answers.
    const port = await freePort();
    const down = await run(START, {
      DATABASE_URL: db.url,
      QUEUE_BACKEND: 'redis',
      LOCAL_REDIS_URL: `redis://:redis-pass-456@127.0.0.1:${port}/0`,
      TANDEM_AUTH: 'off',
      TANDEM_MALLOC: 'system',
      LOG_LEVEL: 'silent',
    });
    expect(down.code, down.output).toBe(1);
    expect(down.output).toContain(`QUEUE_BACKEND=redis but Redis does not answer at redis://:***@127.0.0.1:${port}/0`);
    expect(down.output).not.toContain('redis-pass-456');
  });
});
