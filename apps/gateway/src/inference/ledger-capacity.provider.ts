import {
  gpuProcessSettings,
  LocalCapacityProvider,
  sharedProcessGpus,
  type AddressableGpus,
  type CapacityProvider,
  type DeviceLease,
  type ReplicaRequest,
} from '@tandem/inference';
import type { SchedulerCapacityProvider } from '@tandem/scheduler';

/**
 * Replica placement for the gateway: GPU replicas take online allocations from the device ledger
 * (which picks the CUDA device and reserves the replica's memory there, and which batch work then
 * cannot take); CPU replicas use the local thread budget, their cores being claimed in the ledger
 * while they have traffic (OnlineClaimService). A GPU request gets GPU leases only, possibly none:
 * whether a GPU model may run on the CPU instead is its config's decision (ModelInstance).
 *
 * GPU replicas are threads of this process, so they may only be placed on GPUs this process can
 * address: never a MIG instance (CUDA shows one only to a process started for it alone), unless
 * the gateway itself runs pinned to exactly that instance (its CUDA_VISIBLE_DEVICES, from the
 * validated config that configureGpuProcess set, names that one MIG UUID).
 */
export class LedgerCapacityProvider implements CapacityProvider {
  private readonly fromLedger = new Set<string>();

  constructor(
    private readonly ledger: SchedulerCapacityProvider,
    private readonly local: LocalCapacityProvider,
    private readonly gpus: AddressableGpus = sharedProcessGpus(gpuProcessSettings().visibleDevices),
  ) {}

  async acquire(req: ReplicaRequest): Promise<DeviceLease[]> {
    if (req.device.kind !== 'gpu') return this.local.acquire(req);
    const granted = await this.ledger.acquire(req, this.gpus);
    for (const l of granted) this.fromLedger.add(l.id);
    return granted;
  }

  release(lease: DeviceLease): void {
    if (this.fromLedger.delete(lease.id)) this.ledger.release(lease as Parameters<SchedulerCapacityProvider['release']>[0]);
    else this.local.release(lease);
  }
}
