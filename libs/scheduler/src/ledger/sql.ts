import type { Pool, PoolClient } from 'pg';
import type { DataSource, EntityManager } from 'typeorm';

/** The NOTIFY channel every scheduler process LISTENs on. */
export const SCHEDULER_CHANNEL = 'tandem_sched';

/** TypeORM returns `[rows, count]` for UPDATE/DELETE and `rows` otherwise; this always gives rows. */
export async function rows<T>(em: EntityManager, sql: string, params: unknown[] = []): Promise<T[]> {
  const r: unknown = await em.query(sql, params);
  if (Array.isArray(r) && r.length === 2 && Array.isArray(r[0]) && typeof r[1] === 'number') return r[0] as T[];
  return r as T[];
}

export const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());

/** A query function returning rows; the ledger runs over TypeORM's manager or a raw pool client. */
export type Sql = <T = unknown>(sql: string, params?: unknown[]) => Promise<T[]>;

export const managerSql =
  (em: EntityManager): Sql =>
  <T>(sql: string, params: unknown[] = []) =>
    rows<T>(em, sql, params);

/**
 * The pg Pool under the TypeORM DataSource. The allocation path talks to it directly: the hot
 * transaction is 5 short statements, and TypeORM's per-query bookkeeping was a visible share of
 * its cost on a 2-core box. Null if the driver does not expose one (then TypeORM is used).
 */
export function pgPoolOf(ds: DataSource): Pool | null {
  const master = (ds.driver as unknown as { master?: unknown }).master;
  return master && typeof (master as Pool).connect === 'function' ? (master as Pool) : null;
}

export const clientSql =
  (c: Pool | PoolClient): Sql =>
  async <T>(sql: string, params: unknown[] = []) =>
    (await c.query(sql, params)).rows as T[];
