import type { Pool, PoolClient } from 'pg';
import type { EntityManager } from 'typeorm';

/** The NOTIFY channel every scheduler process LISTENs on. */
export const SCHEDULER_CHANNEL = 'tandem_sched';

/** TypeORM returns `[rows, count]` for UPDATE/DELETE and `rows` otherwise; this always gives rows. */
export async function rows<T>(em: EntityManager, sql: string, params: unknown[] = []): Promise<T[]> {
  const r: unknown = await em.query(sql, params);
  if (Array.isArray(r) && r.length === 2 && Array.isArray(r[0]) && typeof r[1] === 'number') return r[0] as T[];
  return r as T[];
}

export const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());

/** A query function returning rows, over the pool or one checked-out client (a transaction). */
export type Sql = <T = unknown>(sql: string, params?: unknown[]) => Promise<T[]>;

export const clientSql =
  (c: Pool | PoolClient): Sql =>
  async <T>(sql: string, params: unknown[] = []) =>
    (await c.query(sql, params)).rows as T[];
