import type { Pool, PoolClient } from 'pg';
import type { AllocationKind, AllocationView } from '../scheduler.types';
import type { LedgerAllocation, LedgerDevice } from './placement';
import { PlacementTx } from './placement.tx';
import {
  ALLOCATION_COLUMNS,
  ledgerAllocationColumns,
  ledgerDeviceColumns,
  toAllocationView,
  toLedgerAllocation,
  type AllocationRow,
  type LedgerAllocationRow,
  type ReleasedRow,
} from './rows';
import { clientSql, SCHEDULER_CHANNEL, type Sql } from './sql';

const LEDGER_DEVICE = ledgerDeviceColumns();
const LEDGER_ALLOCATION = ledgerAllocationColumns();

/** Queries of the (rare) activation transaction: a pending online share waiting for revoked ones. */
export class LedgerTx {
  constructor(private readonly sql: Sql) {}

  /** Locks the given devices (id order). */
  async lockDevices(ids: string[]): Promise<LedgerDevice[]> {
    return this.sql<LedgerDevice>(`SELECT ${LEDGER_DEVICE} FROM sched_device WHERE id = ANY($1) ORDER BY id FOR UPDATE`, [ids]);
  }

  async allocationsOn(deviceIds: string[]): Promise<LedgerAllocation[]> {
    if (deviceIds.length === 0) return [];
    const r = await this.sql<LedgerAllocationRow>(`SELECT ${LEDGER_ALLOCATION} FROM sched_allocation WHERE device_id = ANY($1)`, [deviceIds]);
    return r.map(toLedgerAllocation);
  }

  /** Deletes revoking shares whose grace ran out on these devices (online never waits longer). */
  forceReclaim(deviceIds: string[]): Promise<ReleasedRow[]> {
    return releaseWhere(this.sql, `device_id = ANY($1) AND state = 'revoking' AND revoke_deadline < now()`, [deviceIds], 'forced');
  }

  async groupRows(groupId: string): Promise<LedgerAllocation[]> {
    const r = await this.sql<LedgerAllocationRow>(`SELECT ${LEDGER_ALLOCATION} FROM sched_allocation WHERE group_id = $1`, [groupId]);
    return r.map(toLedgerAllocation);
  }

  async activate(groupId: string, ttlMs: number): Promise<void> {
    await this.sql(
      `UPDATE sched_allocation SET state = 'active', lease_expires_at = now() + $2::int * interval '1 millisecond'
        WHERE group_id = $1 AND state = 'pending'`,
      [groupId, ttlMs],
    );
  }
}

/**
 * Deletes matching allocations and announces it in the same statement. A plain release is only
 * announced when the row was being revoked (an online request is waiting for exactly that);
 * announcing every release would wake every scheduler process hundreds of times a second.
 * Reclaims (expired, node lost, forced) are always announced: they are rare and news to the holder.
 */
async function releaseWhere(sql: Sql, where: string, params: unknown[], reason: string): Promise<ReleasedRow[]> {
  const n = params.length + 1;
  const announce = reason === 'released' || reason === 'gave-up' ? `d.state <> 'active'` : 'true';
  return sql<ReleasedRow>(
    `WITH d AS (DELETE FROM sched_allocation WHERE ${where} RETURNING id, group_id, device_id, holder, kind, state)
     SELECT d.id, d.group_id AS "groupId", d.device_id AS "deviceId", d.holder, d.kind,
            CASE WHEN ${announce} THEN pg_notify('${SCHEDULER_CHANNEL}', json_build_object('e', 'release', 'id', d.id,
              'groupId', d.group_id, 'deviceId', d.device_id, 'holder', d.holder, 'reason', $${n}::text)::text) END
       FROM d`,
    [...params, reason],
  );
}

export interface ReapResult {
  lostNodes: string[];
  expired: ReleasedRow[];
  forced: ReleasedRow[];
  lostNodeLeases: ReleasedRow[];
}

interface HeldConnection {
  client: Promise<PoolClient>;
  released: boolean;
}

/** Allocation rows outside a placement transaction: release, renew, reap, listings. */
export class LedgerRepository {
  private readonly sql: Sql;
  /** The connection announceOnlineDemand keeps (openDemandChannel), if any. */
  private demand: HeldConnection | null = null;
  private demandWanted = false;

  /** `pool`: the process's node-postgres pool (PersistenceModule's); the ledger bypasses TypeORM. */
  constructor(private readonly pool: Pool) {
    this.sql = clientSql(pool);
  }

  /**
   * Online traffic started on `node`: a hint to its batch workers' revocation fast path, which
   * stops their borrowed units' processes now; the revocation that makes it so follows in the
   * claim's transaction (one statement, no transaction, nothing stored).
   */
  async announceOnlineDemand(node: string): Promise<void> {
    const args = [SCHEDULER_CHANNEL, JSON.stringify({ e: 'online-demand', node })];
    const held = this.demand ? await this.demand.client.catch(() => null) : null;
    if (held) return void (await held.query('SELECT pg_notify($1, $2)', args));
    if (this.demandWanted) void this.openDemandChannel().catch(() => undefined); // for the next hint
    await this.sql('SELECT pg_notify($1, $2)', args);
  }

  /**
   * Holds a connection of its own for announceOnlineDemand until closeDemandChannel. The hint is
   * sent at the first request after an idle spell, which is when the pool's idle connections
   * have timed out (10 s), and opening one then (a backend started on a box the batch keeps busy)
   * took tens of ms. A broken connection is dropped and the next hint opens another.
   */
  openDemandChannel(): Promise<void> {
    this.demandWanted = true;
    if (!this.demand) {
      const held: HeldConnection = { client: this.pool.connect(), released: false };
      this.demand = held;
      held.client.then(
        (c) => c.on('error', () => this.giveBack(held, c, true)),
        () => {
          if (this.demand === held) this.demand = null;
        },
      );
    }
    return this.demand.client.then(() => undefined);
  }

  closeDemandChannel(): void {
    this.demandWanted = false;
    const held = this.demand;
    if (!held) return;
    void held.client.then(
      (c) => this.giveBack(held, c, false),
      () => undefined,
    );
  }

  private giveBack(held: HeldConnection, c: PoolClient, broken: boolean): void {
    if (this.demand === held) this.demand = null;
    if (held.released) return;
    held.released = true;
    c.release(broken);
  }

  /** Runs one placement (see PlacementTx); a transaction left open by `fn` is rolled back. */
  async placement<T>(fn: (tx: PlacementTx) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    const tx = new PlacementTx(c);
    let broken: Error | undefined;
    try {
      const out = await fn(tx);
      if (!tx.done) await tx.rollback();
      return out;
    } catch (e) {
      // The transaction may have begun (or be aborted); ROLLBACK is harmless either way.
      await c.query('ROLLBACK').catch((err: Error) => (broken = err));
      throw e;
    } finally {
      c.release(broken);
    }
  }

  /** READ COMMITTED is enough: every statement after the row locks sees all committed writers. */
  async transaction<T>(fn: (tx: LedgerTx) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await c.query('BEGIN');
      try {
        const out = await fn(new LedgerTx(clientSql(c)));
        await c.query('COMMIT');
        return out;
      } catch (e) {
        await c.query('ROLLBACK').catch((err: Error) => (broken = err));
        throw e;
      }
    } finally {
      c.release(broken);
    }
  }

  /** Freeing capacity needs no device lock: it can only make the invariant hold more. */
  release(ids: string[], reason = 'released'): Promise<ReleasedRow[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return releaseWhere(this.sql, 'id = ANY($1::uuid[])', [ids], reason);
  }

  releaseGroup(id: string, reason = 'released'): Promise<ReleasedRow[]> {
    return releaseWhere(this.sql, 'group_id = $1::uuid OR id = $1::uuid', [id], reason);
  }

  releaseHolder(holder: string, reason = 'released'): Promise<ReleasedRow[]> {
    return releaseWhere(this.sql, 'holder = $1', [holder], reason);
  }

  /** Extends leases; returns the rows still there, so the caller learns of revocations and losses. */
  renew(ids: string[], ttlMs: number): Promise<{ id: string; state: string }[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return this.sql(
      `UPDATE sched_allocation SET lease_expires_at = now() + $2::int * interval '1 millisecond'
        WHERE id = ANY($1::uuid[]) RETURNING id, state`,
      [ids, ttlMs],
    );
  }

  /**
   * One reaper pass; every statement is a single atomic UPDATE/DELETE … RETURNING, so several
   * processes can reap at once and each expired row is reclaimed (and counted) exactly once.
   */
  async reap(nodeTimeoutMs: number): Promise<ReapResult> {
    const lost = await this.sql<{ name: string }>(
      `UPDATE sched_node SET status = 'lost'
        WHERE status = 'alive' AND last_heartbeat_at < now() - $1::int * interval '1 millisecond' RETURNING name`,
      [nodeTimeoutMs],
    );
    const lostNodeLeases = await releaseWhere(
      this.sql,
      // Only \`lost\` (silent) nodes: a node that \`left\` released its own leases on the way out,
      // and another process sharing its name (gateway + batch on one machine) may still be running.
      `holder_node IN (SELECT name FROM sched_node WHERE status = 'lost')
        OR device_id IN (SELECT d.id FROM sched_device d JOIN sched_node n ON n.name = d.node_name WHERE n.status = 'lost')`,
      [],
      'node-lost',
    );
    const expired = await releaseWhere(this.sql, 'lease_expires_at < now()', [], 'expired');
    const forced = await releaseWhere(this.sql, `state = 'revoking' AND revoke_deadline < now()`, [], 'forced');
    return { lostNodes: lost.map((n) => n.name), expired, forced, lostNodeLeases };
  }

  async list(f: { deviceId?: string; holder?: string; kind?: AllocationKind; limit: number }): Promise<AllocationView[]> {
    const r = await this.sql<AllocationRow>(
      `SELECT ${ALLOCATION_COLUMNS} FROM sched_allocation
        WHERE ($1::text IS NULL OR device_id = $1) AND ($2::text IS NULL OR holder = $2) AND ($3::text IS NULL OR kind = $3)
        ORDER BY created_at, id LIMIT $4`,
      [f.deviceId ?? null, f.holder ?? null, f.kind ?? null, f.limit],
    );
    return r.map(toAllocationView);
  }

  async get(id: string): Promise<AllocationView | null> {
    const r = await this.sql<AllocationRow>(`SELECT ${ALLOCATION_COLUMNS} FROM sched_allocation WHERE id = $1::uuid`, [id]);
    return r[0] ? toAllocationView(r[0]) : null;
  }

  /** Devices over capacity right now (the benchmark's and tests' invariant check); empty when sound. */
  async violations(): Promise<string[]> {
    const r = await this.sql<{ id: string; share: number; mem: number; cap: number }>(
      `SELECT d.id, sum(a.share_milli)::int AS share, sum(a.memory_mib)::int AS mem, d.memory_mib AS cap
         FROM sched_allocation a JOIN sched_device d ON d.id = a.device_id
        WHERE a.state <> 'pending'
        GROUP BY d.id, d.memory_mib
       HAVING sum(a.share_milli) > 1000 OR sum(a.memory_mib) > d.memory_mib`,
    );
    return r.map((v) => `${v.id}: share ${v.share / 1000}, memory ${v.mem}/${v.cap} MiB`);
  }
}
