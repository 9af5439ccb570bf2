import { Pool } from 'pg';
import { pgPoolConfig, type DataSourceParams } from './data-source.options';

/**
 * This process's node-postgres pool, for the paths that bypass TypeORM: the ledger's placement
 * transaction (TypeORM's per-query bookkeeping was a visible share of its cost) and large-object
 * blobs (TypeORM's error logging would print megabyte parameters). TypeORM keeps its own pool
 * private (no public API hands it out), so this is a second pool with the same settings; idle
 * connections of either close after pg's idle timeout.
 */
export function createPgPool(p: DataSourceParams): Pool {
  const pool = new Pool({ connectionString: p.url, ...pgPoolConfig(p) });
  // An idle connection that dies (Postgres restart) emits 'error' on the pool; without a
  // listener that would crash the process. The pool drops it; the next checkout reconnects.
  pool.on('error', () => undefined);
  return pool;
}
