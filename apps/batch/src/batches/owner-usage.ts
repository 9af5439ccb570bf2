import { setTimeout as sleep } from 'node:timers/promises';
import { DomainException, ErrorCode } from '@tandem/shared';
import type { OwnerUsage } from './batch.types';

/** How long a submission or upload waits for the same owner's one in progress before a 429. */
const OWNER_LOCK_WAIT_MS = 5_000;
const OWNER_LOCK_POLL_MS = 50;

/** Anything that runs SQL inside the caller's transaction (a QueryRunner or an EntityManager). */
export interface TxQuery {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}

type Raw = Record<string, unknown>;

/**
 * Takes the owner's transaction-scoped advisory lock (chord submissions, file batches and file
 * uploads all take it, across processes) and returns the owner's usage under it. Stored bytes
 * are the chord batches' items and outputs plus the owner's visible files (inputs, outputs and
 * error files alike): one `BATCH_QUOTA_STORED_MB` for everything the key keeps.
 */
export async function lockOwnerUsage(q: TxQuery, owner: string): Promise<OwnerUsage> {
  const deadline = Date.now() + OWNER_LOCK_WAIT_MS;
  for (;;) {
    const [got] = (await q.query(`SELECT pg_try_advisory_xact_lock(hashtextextended('batch-owner:' || $1, 0)) AS ok`, [owner])) as Raw[];
    if (got!.ok === true) break;
    if (Date.now() >= deadline) {
      throw new DomainException(ErrorCode.RateLimited, 'another submission by this key is still being stored; retry when it has finished', { retryAfterS: 5 });
    }
    await sleep(OWNER_LOCK_POLL_MS);
  }
  return ownerUsage(q, owner);
}

/** The owner's usage without the lock (an upload's early check; the lock is taken when it commits). */
export async function ownerUsage(q: TxQuery, owner: string): Promise<OwnerUsage> {
  const [u] = (await q.query(
    `SELECT count(*) FILTER (WHERE state IN ('queued','running','paused')) AS open,
            coalesce(sum(item_count - items_done - items_failed) FILTER (WHERE state IN ('queued','running','paused')), 0) AS queued,
            coalesce(sum(stored_bytes), 0)
              + (SELECT coalesce(sum(bytes), 0) FROM batch_file WHERE owner = $1 AND status = 'processed' AND expires_at > now()) AS stored
     FROM batch WHERE owner = $1`,
    [owner],
  )) as Raw[];
  return { openBatches: Number(u!.open), queuedItems: Number(u!.queued), storedBytes: Number(u!.stored) };
}
