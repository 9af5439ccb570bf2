import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { BatchEstimate } from '../batches/batch.types';

type Raw = Record<string, unknown>;

/** A file batch admitted and not finished: what it still asks of the owned units. */
export interface AdmittedWork {
  deadline: Date;
  remaining: number;
  /** Its model's measured per-unit rate (lines/s), or null when none is measured yet. */
  rate: number | null;
}

/** What the worker needs to judge a file batch's urgency. */
export interface DeadlineState extends AdmittedWork {
  units: number;
}

/** Old measurements fade: each new chunk's sample weighs against 0.8× the sums so far. */
const DECAY = 0.8;

/**
 * Deadlines and cost in Postgres: device-seconds per batch and per owner, the rolling per-unit
 * throughput of each model, the owned batch units of the ledger, and admitted file-batch work.
 */
@Injectable()
export class UsageRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /** Adds one chunk attempt's unit time to its batch and its owner; returns the owner (null: the batch is gone). */
  async addDeviceSeconds(batchId: string, owned: number, borrowed: number): Promise<string | null> {
    const rows = (await this.ds.query(
      `WITH b AS (
         UPDATE batch SET device_owned_s = device_owned_s + $2, device_borrowed_s = device_borrowed_s + $3 WHERE id = $1 RETURNING coalesce(owner, '-') AS owner),
       o AS (
         INSERT INTO batch_owner_usage (owner, device_owned_s, device_borrowed_s) SELECT owner, $2, $3 FROM b
         ON CONFLICT (owner) DO UPDATE SET device_owned_s = batch_owner_usage.device_owned_s + EXCLUDED.device_owned_s,
           device_borrowed_s = batch_owner_usage.device_borrowed_s + EXCLUDED.device_borrowed_s, updated_at = now())
       SELECT owner FROM b`,
      [batchId, owned, borrowed],
    )) as Raw[];
    return rows[0] ? (rows[0].owner as string) : null;
  }

  /** One committed chunk's sample: `items` lines ran in `unitSeconds` of unit time. */
  async addThroughput(model: string, deviceKind: string, items: number, unitSeconds: number): Promise<void> {
    await this.ds.query(
      `INSERT INTO batch_throughput (model, device_kind, items, unit_seconds) VALUES ($1, $2, $3, $4)
       ON CONFLICT (model, device_kind) DO UPDATE SET items = batch_throughput.items * ${DECAY} + EXCLUDED.items,
         unit_seconds = batch_throughput.unit_seconds * ${DECAY} + EXCLUDED.unit_seconds, samples = batch_throughput.samples + 1, updated_at = now()`,
      [model, deviceKind, items, unitSeconds],
    );
  }

  /** Lines per second of one unit, or null before any chunk of the model committed. */
  async rate(model: string, deviceKind: string): Promise<number | null> {
    const rows = (await this.ds.query(`SELECT items / NULLIF(unit_seconds, 0) AS rate FROM batch_throughput WHERE model = $1 AND device_kind = $2`, [
      model,
      deviceKind,
    ])) as Raw[];
    const r = rows[0]?.rate;
    return r === null || r === undefined ? null : Number(r);
  }

  /**
   * Batch units the owned batch share of every live node's devices of this kind gives (a core of
   * a CPU's batch share, a whole GPU's): what a deadline can count on. Borrowing is not counted.
   */
  async ownedUnits(deviceKind: string): Promise<number> {
    const rows = (await this.ds.query(
      `SELECT coalesce(sum(CASE WHEN d.kind = 'cpu' THEN floor(d.batch_milli * coalesce(d.cores, 1) / 1000.0 + 1e-9) ELSE floor(d.batch_milli / 1000.0 + 1e-9) END), 0) AS units
       FROM sched_device d JOIN sched_node n ON n.name = d.node_name WHERE d.kind = $1 AND NOT d.drained AND n.status = 'alive'`,
      [deviceKind],
    )) as Raw[];
    return Number(rows[0]?.units ?? 0);
  }

  /** Open file batches by deadline, with their model's rate (the queue a new deadline joins). */
  async admitted(deviceKind: string, limit = 10_000): Promise<AdmittedWork[]> {
    const rows = (await this.ds.query(
      `SELECT f.expires_at, greatest(0, f.line_count - f.requests_completed - f.requests_failed) AS remaining, t.items / NULLIF(t.unit_seconds, 0) AS rate
       FROM batch b JOIN file_batch f ON f.batch_id = b.id LEFT JOIN batch_throughput t ON t.model = f.model AND t.device_kind = $1
       WHERE b.state IN ('queued', 'running') AND f.expires_at > now() ORDER BY f.expires_at LIMIT $2`,
      [deviceKind, limit],
    )) as Raw[];
    return rows.map(toAdmitted);
  }

  /** A running file batch's deadline, remaining lines and rate; null for a chord or a finished batch. */
  async deadlineState(batchId: string, deviceKind: string): Promise<DeadlineState | null> {
    const rows = (await this.ds.query(
      `SELECT f.expires_at, greatest(0, f.line_count - f.requests_completed - f.requests_failed) AS remaining, t.items / NULLIF(t.unit_seconds, 0) AS rate
       FROM file_batch f LEFT JOIN batch_throughput t ON t.model = f.model AND t.device_kind = $2 WHERE f.batch_id = $1`,
      [batchId, deviceKind],
    )) as Raw[];
    if (!rows[0]) return null;
    return { ...toAdmitted(rows[0]), units: await this.ownedUnits(deviceKind) };
  }

  async setEstimate(batchId: string, estimate: BatchEstimate): Promise<void> {
    await this.ds.query(`UPDATE batch SET estimate = $2::jsonb WHERE id = $1`, [batchId, JSON.stringify(estimate)]);
  }
}

function toAdmitted(r: Raw): AdmittedWork {
  return { deadline: r.expires_at as Date, remaining: Number(r.remaining), rate: r.rate === null || r.rate === undefined ? null : Number(r.rate) };
}
