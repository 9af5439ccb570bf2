import { DomainException } from '@tandem/shared';
import type { AuditLogRepository } from '@tandem/persistence';
import type { InventoryRepository } from './ledger/inventory.repository';
import type { LedgerRepository } from './ledger/ledger.repository';
import {
  MILLI,
  type AllocationKind,
  type AllocationView,
  type DeviceKind,
  type DeviceView,
  type NodeView,
  type PartitionChange,
  type PartitionView,
} from './scheduler.types';

export interface AuditPage {
  entries: { id: string; at: string; actor: string; action: string; target: string; details: Record<string, unknown> }[];
  /** Pass as `before` for the next (older) page; null on the last page. */
  next: string | null;
}

/** The ledger's read side and its audited admin actions (partitions, drains). */
export class DeviceLedgerService {
  constructor(
    private readonly inventory: InventoryRepository,
    private readonly ledger: LedgerRepository,
    private readonly audit: AuditLogRepository,
  ) {}

  listNodes(): Promise<NodeView[]> {
    return this.inventory.listNodes();
  }

  listDevices(f: { node?: string; kind?: DeviceKind } = {}): Promise<DeviceView[]> {
    return this.inventory.listDevices(f);
  }

  /** See LedgerRepository.announceOnlineDemand. */
  announceOnlineDemand(node: string): Promise<void> {
    return this.ledger.announceOnlineDemand(node);
  }

  /** See LedgerRepository.openDemandChannel. */
  openDemandChannel(): Promise<void> {
    return this.ledger.openDemandChannel();
  }

  closeDemandChannel(): void {
    this.ledger.closeDemandChannel();
  }

  /** Devices of one kind on a node that can take new allocations (node alive, device not drained). */
  async usableDevices(node: string, kind: DeviceKind): Promise<DeviceView[]> {
    return (await this.inventory.listDevices({ node, kind })).filter((d) => !d.drained && d.nodeStatus === 'alive');
  }

  async getDevice(id: string): Promise<DeviceView> {
    const d = await this.inventory.getDevice(id);
    if (!d) throw DomainException.notFound(`unknown device "${id}"`);
    return d;
  }

  async listPartitions(): Promise<PartitionView[]> {
    return (await this.inventory.listDevices()).map((d) => d.partition);
  }

  listAllocations(f: { deviceId?: string; holder?: string; kind?: AllocationKind; limit?: number } = {}): Promise<AllocationView[]> {
    return this.ledger.list({ ...f, limit: f.limit ?? 500 });
  }

  /**
   * Changes a device's partition; the change and its audit row commit together. Existing
   * allocations are kept; the new partition governs admissions from now on.
   */
  async setPartition(deviceId: string, change: PartitionChange, actor: string): Promise<PartitionView> {
    const online = Math.round(change.online * MILLI);
    const batch = Math.round(change.batch * MILLI);
    if (!Number.isFinite(change.online) || !Number.isFinite(change.batch) || online < 0 || batch < 0) {
      throw DomainException.invalid('partition shares must be numbers ≥ 0');
    }
    if (online + batch > MILLI) throw DomainException.invalid(`partition online ${change.online} + batch ${change.batch} exceeds 1`);
    await this.inventory.transaction(async (em) => {
      const before = await this.inventory.lockDevice(em, deviceId);
      if (!before) throw DomainException.notFound(`unknown device "${deviceId}"`);
      const next = { onlineMilli: online, batchMilli: batch, batchMayBorrow: change.batchMayBorrow ?? before.batchMayBorrow };
      await this.inventory.setPartition(em, deviceId, next);
      await this.audit.record(
        {
          actor,
          action: 'partition.update',
          target: `device:${deviceId}`,
          details: {
            before: { online: before.onlineMilli / MILLI, batch: before.batchMilli / MILLI, batchMayBorrow: before.batchMayBorrow },
            after: { online: online / MILLI, batch: batch / MILLI, batchMayBorrow: next.batchMayBorrow },
          },
        },
        em,
      );
    });
    return (await this.getDevice(deviceId)).partition;
  }

  /** A drained device takes no new allocations; current holders keep theirs until they release. */
  async setDrained(deviceId: string, drained: boolean, actor: string): Promise<DeviceView> {
    await this.inventory.transaction(async (em) => {
      const before = await this.inventory.lockDevice(em, deviceId);
      if (!before) throw DomainException.notFound(`unknown device "${deviceId}"`);
      await this.inventory.setDrained(em, deviceId, drained);
      await this.audit.record(
        { actor, action: drained ? 'device.drain' : 'device.undrain', target: `device:${deviceId}`, details: { was: before.drained } },
        em,
      );
    });
    return this.getDevice(deviceId);
  }

  async auditLog(limit: number, before?: string): Promise<AuditPage> {
    const rows = await this.audit.list(limit + 1, before);
    const page = rows.slice(0, limit);
    return {
      entries: page.map((r) => ({ id: r.id, at: new Date(r.at).toISOString(), actor: r.actor, action: r.action, target: r.target, details: r.details })),
      next: rows.length > limit ? (page[page.length - 1]?.id ?? null) : null,
    };
  }

  /** Devices over capacity now; always empty unless the ledger is broken (tests, bench). */
  violations(): Promise<string[]> {
    return this.ledger.violations();
  }
}
