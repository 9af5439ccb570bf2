import { Redis } from 'ioredis';
import { Client } from 'pg';

/** Resolves true when a Postgres server answers at `url` (any database error other than "cannot connect" counts as answering). */
export async function postgresAnswers(url: string): Promise<{ ok: true } | { ok: false; reason: string }> {
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Creates the database named in `url` if the server has none by that name. */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1)) || 'postgres';
  const maint = new URL(url);
  maint.pathname = '/postgres';
  const c = new Client({ connectionString: maint.toString(), connectionTimeoutMillis: 3_000 });
  await c.connect();
  try {
    const { rowCount } = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) await c.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
  } finally {
    await c.end();
  }
}

export async function redisAnswers(url: string): Promise<{ ok: true } | { ok: false; reason: string }> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1_500, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    const pong = await r.ping();
    return pong === 'PONG' ? { ok: true } : { ok: false, reason: `PING answered ${pong}` };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  } finally {
    r.disconnect();
  }
}

/** Polls `url` until it answers 200 or the deadline passes. */
export async function waitForHttp200(url: string, deadline: number, alive: () => boolean): Promise<void> {
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`process serving ${url} exited`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (res.status === 200) return;
      last = `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} not ready in time (${last})`);
}
