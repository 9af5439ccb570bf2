import { escapeLiteral, type PoolClient, type QueryResult } from 'pg';
import type { LedgerAllocation } from './placement';
import {
  candidateColumns,
  ledgerAllocationColumns,
  toLedgerAllocation,
  type CandidateDevice,
  type CandidateFilter,
  type LedgerAllocationRow,
  type NewAllocation,
  type RevokedRow,
} from './rows';
import { SCHEDULER_CHANNEL } from './sql';

const CANDIDATE = candidateColumns('d');
const LEDGER_ALLOCATION = ledgerAllocationColumns('a');

const lit = (v: string | null | undefined): string => (v === null || v === undefined ? 'NULL' : escapeLiteral(v));
const litArr = (v: string[] | undefined): string => (v === undefined ? 'NULL' : `ARRAY[${v.map(lit).join(', ')}]::text[]`);
const int = (n: number): string => {
  if (!Number.isSafeInteger(n)) throw new Error(`not an integer: ${n}`);
  return String(n);
};

/**
 * The device constraints of a request as SQL over `sched_device d` (values inlined with
 * escapeLiteral). A MIG instance is a row with a parent GPU; a `gpus` entry names a whole GPU by
 * index, or any GPU device by UUID, as CUDA_VISIBLE_DEVICES does.
 */
export function deviceFilterSql(f: CandidateFilter): string {
  const parts = [
    `(${lit(f.deviceKind)}::text IS NULL OR d.kind = ${lit(f.deviceKind)})`,
    `(${litArr(f.nodes)} IS NULL OR d.node_name = ANY(${litArr(f.nodes)}))`,
    `(${litArr(f.devices)} IS NULL OR d.id = ANY(${litArr(f.devices)}))`,
  ];
  if (f.mig === 'exclude') parts.push('d.parent_gpu_uuid IS NULL');
  if (f.mig === 'only') parts.push('d.parent_gpu_uuid IS NOT NULL');
  if (f.gpus !== undefined) {
    const names = litArr(f.gpus);
    parts.push(`(d.gpu_uuid = ANY(${names}) OR (d.kind = 'gpu' AND d.parent_gpu_uuid IS NULL AND d.gpu_index::text = ANY(${names})))`);
  }
  return parts.join(' AND ');
}

/**
 * The hot allocation transaction in two round trips: `BEGIN; lock; read` and
 * `INSERT; revoke; COMMIT`, as multi-statement simple queries (values inlined with pg's
 * escapeLiteral). Each statement still takes its own READ COMMITTED snapshot, so the usage read
 * runs after the locks are held and sees every committed allocation on those devices. Fewer round
 * trips mean shorter lock holds; that is what keeps 4 racing processes off each other's backs.
 */
export class PlacementTx {
  done = false;
  constructor(private readonly c: PoolClient) {}

  /**
   * `fast`: lock just the `count` best-looking devices that nobody is placing on right now
   * (SKIP LOCKED, ranked on a snapshot of their usage); the caller re-checks them with the fresh
   * read and falls back to the full pass. Full: lock every candidate, waiting, in id order.
   */
  async lockAndRead(
    f: CandidateFilter,
    fast: { shareMilli: number; memoryMiB: number; count: number; placement: 'pack' | 'spread' } | null,
  ): Promise<{ devices: CandidateDevice[]; allocations: LedgerAllocation[] }> {
    const where = `n.status = 'alive' AND NOT d.drained AND ${deviceFilterSql(f)}`;
    const used = `(SELECT coalesce(sum(a.share_milli), 0) FROM sched_allocation a WHERE a.device_id = d.id)`;
    const usedMem = `(SELECT coalesce(sum(a.memory_mib), 0) FROM sched_allocation a WHERE a.device_id = d.id)`;
    const pick = fast
      ? `AND ${used} + ${int(fast.shareMilli)} <= 1000 AND ${usedMem} + ${int(fast.memoryMiB)} <= d.memory_mib
       ORDER BY ${used} ${fast.placement === 'pack' ? 'DESC' : 'ASC'}, d.id
       LIMIT ${int(fast.count)}
         FOR UPDATE OF d SKIP LOCKED`
      : `ORDER BY d.id
         FOR UPDATE OF d`;
    const sql = `BEGIN;
      SELECT ${CANDIDATE}
        FROM sched_device d JOIN sched_node n ON n.name = d.node_name
       WHERE ${where}
       ${pick};
      SELECT ${LEDGER_ALLOCATION}
        FROM sched_allocation a
       WHERE a.device_id IN (SELECT d.id FROM sched_device d JOIN sched_node n ON n.name = d.node_name WHERE ${where})`;
    const res = (await this.c.query(sql)) as unknown as QueryResult[];
    return { devices: res[1]!.rows as CandidateDevice[], allocations: (res[2]!.rows as LedgerAllocationRow[]).map(toLedgerAllocation) };
  }

  async commit(allocs: NewAllocation[], holder: string, holderNode: string | null, ttlMs: number, revokeIds: string[], graceMs: number): Promise<RevokedRow[]> {
    const values = allocs
      .map(
        (a) =>
          `(${lit(a.id)}::uuid, ${lit(a.groupId)}::uuid, ${lit(a.deviceId)}, ${lit(a.kind)}, ${lit(a.state)}, ${int(a.shareMilli)}, ` +
          `${int(a.memoryMiB)}, ${a.borrowed ? 'true' : 'false'}, ${lit(holder)}, ${lit(holderNode)}, now() + ${int(ttlMs)} * interval '1 millisecond')`,
      )
      .join(', ');
    const revoke =
      revokeIds.length === 0
        ? ''
        : `WITH r AS (
             UPDATE sched_allocation SET state = 'revoking', revoke_deadline = now() + ${int(graceMs)} * interval '1 millisecond'
              WHERE id = ANY(ARRAY[${revokeIds.map(lit).join(', ')}]::uuid[]) AND state = 'active'
              RETURNING id, group_id, device_id, holder, revoke_deadline)
           SELECT r.id, r.group_id AS "groupId", r.device_id AS "deviceId", r.holder, r.revoke_deadline AS deadline,
                  pg_notify('${SCHEDULER_CHANNEL}', json_build_object('e', 'revoke', 'id', r.id, 'groupId', r.group_id,
                    'deviceId', r.device_id, 'holder', r.holder, 'deadline', r.revoke_deadline,
                    'at', extract(epoch from clock_timestamp()) * 1000)::text)
             FROM r;`;
    const sql = `INSERT INTO sched_allocation (id, group_id, device_id, kind, state, share_milli, memory_mib, borrowed, holder, holder_node, lease_expires_at)
      VALUES ${values};
      ${revoke}
      COMMIT`;
    const res = (await this.c.query(sql)) as unknown as QueryResult[];
    this.done = true;
    return revokeIds.length === 0 ? [] : (res[1]!.rows as RevokedRow[]);
  }

  async rollback(): Promise<void> {
    this.done = true;
    await this.c.query('ROLLBACK');
  }
}
