import { cudaPlacement, replicaThreads, type CapacityProvider, type DeviceLease, type ReplicaRequest } from '@tandem/inference';
import { DomainException } from '@tandem/shared';
import type { AllocationService } from './allocation.service';
import type { DeviceLedgerService } from './device-ledger.service';
import type { Lease } from './lease/lease';
import type { SchedulerLogger } from './scheduler.logger';
import type { AllocationRequest } from './scheduler.types';

/** A replica's device lease from the ledger. */
export interface ReplicaLease extends DeviceLease {
  /** The ledger lease behind it: `signal` aborts if the share is reclaimed. */
  readonly lease: Lease;
}

/** Which GPU devices a replica may get (AllocationRequest's `mig` and `gpus`). */
export type GpuConstraint = Pick<AllocationRequest, 'mig' | 'gpus'>;

export interface SchedulerCapacityOptions {
  /** Share of a GPU each replica takes (default a whole one). */
  gpuSharePerReplica?: number;
  /**
   * The GPUs the replicas' process can address. Default: no MIG instance, since replicas run as
   * threads of this process and CUDA shows a process a MIG instance only when it is started for it
   * alone (a caller pinned to one passes `sharedProcessGpus` of its CUDA_VISIBLE_DEVICES).
   */
  gpus?: GpuConstraint;
}

/**
 * Online replica capacity from the ledger, on this process's own node (replicas run in-process).
 * CPU replicas take `threadsPerReplica / cores` of the node's CPU device; GPU replicas a GPU share
 * on a GPU this process can address (never a MIG instance by default).
 * Grants fewer replicas than asked when the online partition (or a device's memory) is full,
 * never more. A failure other than "no capacity" gives back every lease this call took.
 */
export class SchedulerCapacityProvider implements CapacityProvider<ReplicaLease> {
  constructor(
    private readonly allocations: AllocationService,
    private readonly ledger: DeviceLedgerService,
    private readonly nodeName: string,
    private readonly logger: SchedulerLogger,
    private readonly opts: SchedulerCapacityOptions = {},
  ) {}

  /** `gpus`: this call's GPU constraint (default the provider's; see SchedulerCapacityOptions). */
  async acquire(req: ReplicaRequest, gpus: GpuConstraint = this.opts.gpus ?? { mig: 'exclude' }): Promise<ReplicaLease[]> {
    const out: ReplicaLease[] = [];
    const cpu = req.device.kind === 'cpu' ? (await this.ledger.usableDevices(this.nodeName, 'cpu'))[0] : undefined;
    for (let i = 0; i < req.count; i++) {
      try {
        const holder = `${this.allocations.defaultHolder}/replica:${req.model}:${req.version}`;
        if (req.device.kind === 'gpu') {
          const lease = await this.allocations.allocate({
            kind: 'online',
            share: this.opts.gpuSharePerReplica ?? 1,
            memoryMiB: req.device.memoryMiB ?? 0,
            deviceKind: 'gpu',
            nodes: [this.nodeName],
            ...gpus,
            holder,
          });
          out.push({ id: lease.id, placement: cudaPlacement(lease.grant.devices[0]!), lease });
        } else {
          if (!cpu || !cpu.cores) break;
          const threads = replicaThreads(req.device.threadsPerReplica, cpu.cores);
          const lease = await this.allocations.allocate({ kind: 'online', share: threads / cpu.cores, devices: [cpu.id], holder });
          out.push({ id: lease.id, placement: { kind: 'cpu', intraOpThreads: threads }, lease });
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
