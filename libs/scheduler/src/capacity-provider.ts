import { DomainException } from '@tandem/shared';
import type { AllocationService } from './allocation.service';
import type { DeviceLedgerService } from './device-ledger.service';
import type { Lease } from './lease/lease';
import type { SchedulerLogger } from './scheduler.logger';
import type { GrantedDevice } from './scheduler.types';

/** The CUDA placement a GPU grant names: index, UUID (pins MIG instances too) and memory held. */
export function cudaPlacement(g: GrantedDevice): { kind: 'cuda'; deviceId: number; uuid: string | null; memoryMiB: number } {
  return { kind: 'cuda', deviceId: g.gpuIndex ?? 0, uuid: g.gpuUuid, memoryMiB: g.memoryMiB };
}

/**
 * Structurally the gateway's `CapacityProvider` (libs/inference/src/capacity-provider.ts), so the
 * autoscaler can take replica capacity from the ledger instead of the local provider.
 */
export interface ReplicaCapacityRequest {
  model: string;
  version: string;
  count: number;
  /** `memoryMiB`: device memory one GPU replica holds (the model's `device.memory_mib`); default the provider's. */
  device: { kind: 'cpu' | 'gpu'; threadsPerReplica: number; memoryMiB?: number };
}

export type ReplicaPlacement = { kind: 'cpu'; intraOpThreads: number } | { kind: 'cuda'; deviceId: number; uuid: string | null; memoryMiB: number };

export interface ReplicaLease {
  readonly id: string;
  readonly placement: ReplicaPlacement;
  /** The ledger lease behind it: `signal` aborts if the share is reclaimed. */
  readonly lease: Lease;
}

export interface SchedulerCapacityOptions {
  /** Share of a GPU each replica takes (default a whole one). */
  gpuSharePerReplica?: number;
  /** Device memory per GPU replica, MiB, where the request names none. */
  gpuMemoryMiBPerReplica?: number;
}

/**
 * Online replica capacity from the ledger, on this process's own node (replicas run in-process).
 * CPU replicas take `threadsPerReplica / cores` of the node's CPU device; GPU replicas a GPU share.
 * Grants fewer replicas than asked when the online partition (or a device's memory) is full,
 * never more. A failure other than "no capacity" gives back every lease this call took.
 */
export class SchedulerCapacityProvider {
  constructor(
    private readonly allocations: AllocationService,
    private readonly ledger: DeviceLedgerService,
    private readonly nodeName: string,
    private readonly logger: SchedulerLogger,
    private readonly opts: SchedulerCapacityOptions = {},
  ) {}

  async acquire(req: ReplicaCapacityRequest): Promise<ReplicaLease[]> {
    const out: ReplicaLease[] = [];
    const cpu = req.device.kind === 'cpu' ? (await this.ledger.usableDevices(this.nodeName, 'cpu'))[0] : undefined;
    for (let i = 0; i < req.count; i++) {
      try {
        const holder = `${this.allocations.defaultHolder}/replica:${req.model}:${req.version}`;
        if (req.device.kind === 'gpu') {
          const lease = await this.allocations.allocate({
            kind: 'online',
            share: this.opts.gpuSharePerReplica ?? 1,
            memoryMiB: req.device.memoryMiB ?? this.opts.gpuMemoryMiBPerReplica ?? 0,
            deviceKind: 'gpu',
            nodes: [this.nodeName],
            holder,
          });
          out.push({ id: lease.id, placement: cudaPlacement(lease.grant.devices[0]!), lease });
        } else {
          if (!cpu || !cpu.cores) break;
          const threads = Math.max(1, Math.min(req.device.threadsPerReplica, cpu.cores));
          const lease = await this.allocations.allocate({ kind: 'online', share: threads / cpu.cores, devices: [cpu.id], holder });
          out.push({ id: lease.id, placement: { kind: 'cpu', intraOpThreads: lease.grant.threads }, lease });
        }
      } catch (e) {
        if (e instanceof DomainException) {
          this.logger.info({ model: req.model, granted: out.length, wanted: req.count, why: e.message }, 'replica capacity short');
          break;
        }
        // Nobody will ever release what this call took if it throws: do it here.
        await Promise.allSettled(out.map((l) => l.lease.release()));
        throw e;
      }
    }
    return out;
  }

  release(lease: ReplicaLease): void {
    lease.lease.release().catch((err: unknown) => this.logger.warn({ err, lease: lease.id }, 'replica lease release failed'));
  }
}
