import { DataSource, type EntityManager } from 'typeorm';
import type { DiscoveredDevice } from '../inventory/device-discovery';
import type { DeviceKind, DeviceView, NodeView } from '../scheduler.types';
import { deviceFilterSql } from './placement.tx';
import {
  deviceColumns,
  NODE_COLUMNS,
  PARTITION_COLUMNS,
  toDeviceView,
  toNodeView,
  type CandidateFilter,
  type DeviceUsageRow,
  type NodeRow,
  type PartitionRow,
} from './rows';
import { rows } from './sql';

export interface NodeRegistration {
  name: string;
  hostname: string;
  pid: number;
  info: Record<string, unknown>;
  devices: DiscoveredDevice[];
  /** UUIDs of the physical GPUs the probe saw (whatever became of them: whole, MIG, none). */
  probedGpuUuids?: string[];
  defaultPartition: { onlineMilli: number; batchMilli: number; batchMayBorrow: boolean };
}

const DEVICE_SELECT = `
  SELECT ${deviceColumns('d')}, n.status AS "nodeStatus",
         coalesce(sum(a.share_milli) FILTER (WHERE a.kind = 'online' AND a.state <> 'pending'), 0)::int AS "usedOnline",
         coalesce(sum(a.share_milli) FILTER (WHERE a.kind = 'batch'), 0)::int AS "usedBatch",
         coalesce(sum(a.share_milli) FILTER (WHERE a.kind = 'batch' AND a.borrowed), 0)::int AS "usedBorrowed",
         coalesce(sum(a.share_milli) FILTER (WHERE a.state = 'pending'), 0)::int AS "pendingOnline",
         coalesce(sum(a.memory_mib) FILTER (WHERE a.state <> 'pending'), 0)::int AS "usedMem",
         count(a.id)::int AS allocations
    FROM sched_device d
    JOIN sched_node n ON n.name = d.node_name
    LEFT JOIN sched_allocation a ON a.device_id = d.id`;

/** Nodes, devices and partitions. */
export class InventoryRepository {
  constructor(private readonly ds: DataSource) {}

  transaction<T>(fn: (em: EntityManager) => Promise<T>): Promise<T> {
    return this.ds.transaction(fn);
  }

  /**
   * Upserts the node and its devices in one transaction. Re-registration keeps each device's
   * partition and drain flag (admin decisions outlive restarts). Devices missing from this
   * registration are kept: another process sharing the node name may have registered them
   * (gateway and batch on one machine); drain a device that is really gone.
   */
  async register(r: NodeRegistration): Promise<void> {
    await this.ds.transaction(async (em) => {
      await em.query(
        `INSERT INTO sched_node (name, status, hostname, pid, info, registered_at, last_heartbeat_at)
         VALUES ($1, 'alive', $2, $3, $4::jsonb, now(), now())
         ON CONFLICT (name) DO UPDATE SET status = 'alive', hostname = EXCLUDED.hostname, pid = EXCLUDED.pid,
           info = EXCLUDED.info, registered_at = now(), last_heartbeat_at = now()`,
        [r.name, r.hostname, r.pid, JSON.stringify(r.info)],
      );
      for (const d of r.devices) {
        const id = `${r.name}/${d.localId}`;
        await em.query(
          `INSERT INTO sched_device (id, node_name, local_id, kind, source, model, gpu_index, gpu_uuid, mig_mode, parent_gpu_uuid, mig_profile,
                                     mig_device_index, compute_milli, cores, memory_mib, online_milli, batch_milli, batch_may_borrow)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
           ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, source = EXCLUDED.source, model = EXCLUDED.model,
             gpu_index = EXCLUDED.gpu_index, gpu_uuid = EXCLUDED.gpu_uuid, mig_mode = EXCLUDED.mig_mode,
             parent_gpu_uuid = EXCLUDED.parent_gpu_uuid, mig_profile = EXCLUDED.mig_profile, mig_device_index = EXCLUDED.mig_device_index,
             compute_milli = EXCLUDED.compute_milli, cores = EXCLUDED.cores, memory_mib = EXCLUDED.memory_mib, updated_at = now()`,
          [
            id,
            r.name,
            d.localId,
            d.kind,
            d.source,
            d.model,
            d.gpuIndex,
            d.gpuUuid,
            d.migMode,
            d.parentGpuUuid,
            d.migProfile,
            d.migDeviceIndex,
            d.computeFraction === null ? null : Math.round(d.computeFraction * 1000),
            d.cores,
            d.memoryMiB,
            r.defaultPartition.onlineMilli,
            r.defaultPartition.batchMilli,
            r.defaultPartition.batchMayBorrow,
          ],
        );
      }
      await this.retireSuperseded(em, r);
    });
  }

  /**
   * A physical GPU this registration probed may have changed shape: MIG turned on (the whole-GPU
   * row is superseded by its MIG devices), off, or re-partitioned (old MIG rows). Discovered rows
   * of this node for a probed GPU that this registration did not write are deleted, or drained
   * while allocations still hold them (deleted at a later registration). Rows of GPUs this probe
   * did not see are kept, as for any device (another process may have registered them).
   */
  private async retireSuperseded(em: EntityManager, r: NodeRegistration): Promise<void> {
    const ids = r.devices.map((d) => `${r.name}/${d.localId}`);
    const physical = r.probedGpuUuids ?? [];
    if (physical.length === 0) return;
    const stale = `node_name = $1 AND source = 'discovered' AND kind = 'gpu' AND NOT (id = ANY($2))
      AND (gpu_uuid = ANY($3) OR parent_gpu_uuid = ANY($3))`;
    await em.query(`DELETE FROM sched_device d WHERE ${stale} AND NOT EXISTS (SELECT 1 FROM sched_allocation a WHERE a.device_id = d.id)`, [
      r.name,
      ids,
      physical,
    ]);
    await em.query(`UPDATE sched_device SET drained = true, updated_at = now() WHERE ${stale}`, [r.name, ids, physical]);
  }

  /** Returns false if the node row is gone (someone deleted it): the agent re-registers. */
  async heartbeat(name: string): Promise<boolean> {
    const r = await rows(this.ds.manager, `UPDATE sched_node SET last_heartbeat_at = now(), status = 'alive' WHERE name = $1 RETURNING name`, [name]);
    return r.length > 0;
  }

  /**
   * Only the process that registered last marks the node `left`: several processes on one machine
   * (gateway and batch) share a node name, and the others keep it alive with their heartbeats.
   * The hostname is part of the check because in containers every app is pid 1.
   */
  async markLeft(name: string, pid: number, host: string): Promise<void> {
    await this.ds.query(`UPDATE sched_node SET status = 'left' WHERE name = $1 AND pid = $2 AND hostname = $3`, [name, pid, host]);
  }

  async listNodes(): Promise<NodeView[]> {
    const r = await rows<NodeRow>(this.ds.manager, `SELECT ${NODE_COLUMNS} FROM sched_node ORDER BY name`);
    return r.map(toNodeView);
  }

  async listDevices(f: { node?: string; kind?: DeviceKind } = {}): Promise<DeviceView[]> {
    const r = await rows<DeviceUsageRow>(
      this.ds.manager,
      `${DEVICE_SELECT}
        WHERE ($1::text IS NULL OR d.node_name = $1) AND ($2::text IS NULL OR d.kind = $2)
        GROUP BY d.id, n.status ORDER BY d.id`,
      [f.node ?? null, f.kind ?? null],
    );
    return r.map(toDeviceView);
  }

  async getDevice(id: string, em: EntityManager = this.ds.manager): Promise<DeviceView | null> {
    const r = await rows<DeviceUsageRow>(em, `${DEVICE_SELECT} WHERE d.id = $1 GROUP BY d.id, n.status`, [id]);
    return r[0] ? toDeviceView(r[0]) : null;
  }

  /** Locks one device row for an admin change; null when it does not exist. */
  async lockDevice(em: EntityManager, id: string): Promise<PartitionRow | null> {
    const r = await rows<PartitionRow>(em, `SELECT ${PARTITION_COLUMNS} FROM sched_device WHERE id = $1 FOR UPDATE`, [id]);
    return r[0] ?? null;
  }

  async setPartition(em: EntityManager, id: string, p: { onlineMilli: number; batchMilli: number; batchMayBorrow: boolean }): Promise<void> {
    await em.query(`UPDATE sched_device SET online_milli = $2, batch_milli = $3, batch_may_borrow = $4, updated_at = now() WHERE id = $1`, [
      id,
      p.onlineMilli,
      p.batchMilli,
      p.batchMayBorrow,
    ]);
  }

  async setDrained(em: EntityManager, id: string, drained: boolean): Promise<void> {
    await em.query(`UPDATE sched_device SET drained = $2, updated_at = now() WHERE id = $1`, [id, drained]);
  }

  /** How many devices match a request's constraints, whatever their state (for "share > device count"). */
  async countMatching(f: CandidateFilter): Promise<number> {
    const r = await rows<{ n: number }>(this.ds.manager, `SELECT count(*)::int AS n FROM sched_device d WHERE ${deviceFilterSql(f)}`, []);
    return r[0]?.n ?? 0;
  }

  async existingDeviceIds(ids: string[]): Promise<Set<string>> {
    const r = await rows<{ id: string }>(this.ds.manager, 'SELECT id FROM sched_device WHERE id = ANY($1)', [ids]);
    return new Set(r.map((x) => x.id));
  }

  async existingNodes(names: string[]): Promise<Set<string>> {
    const r = await rows<{ name: string }>(this.ds.manager, 'SELECT name FROM sched_node WHERE name = ANY($1)', [names]);
    return new Set(r.map((x) => x.name));
  }
}
