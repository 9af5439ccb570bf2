/**
 * Where a replica or a batch unit runs, and where that capacity comes from: the one model of a
 * device placement. The inference lib owns it; the device scheduler (libs/scheduler) implements
 * `CapacityProvider` over its ledger and hands out these placements.
 */

/** A CPU share: the onnxruntime intra-op threads the session runs with. */
export type CpuPlacement = { kind: 'cpu'; intraOpThreads: number };
/**
 * One CUDA device. `deviceId` is the CUDA index under CUDA_DEVICE_ORDER=PCI_BUS_ID; `uuid`
 * (GPU-… or MIG-…) pins exactly the allocated device where known; `memoryMiB` is the device
 * memory the allocation holds (0: not declared).
 */
export type CudaPlacement = { kind: 'cuda'; deviceId: number; uuid: string | null; memoryMiB: number };
export type DevicePlacement = CpuPlacement | CudaPlacement;

/** The CUDA placement of a GPU grant: index, UUID (pins MIG instances too) and memory held. */
export function cudaPlacement(g: { gpuIndex: number | null; gpuUuid: string | null; memoryMiB: number }): CudaPlacement {
  return { kind: 'cuda', deviceId: g.gpuIndex ?? 0, uuid: g.gpuUuid, memoryMiB: g.memoryMiB };
}

/**
 * The threads (cores) one CPU replica of a model runs with on a CPU of `cores`: what its config
 * asks (`threads_per_replica`), never more than the machine has, at least one.
 */
export function replicaThreads(threadsPerReplica: number, cores: number): number {
  return Math.max(1, Math.min(threadsPerReplica, cores));
}

export interface ReplicaRequest {
  model: string;
  version: string;
  /** Replicas wanted; a provider may grant fewer (never more). */
  count: number;
  /** `memoryMiB`: device memory one GPU replica holds (the model's `device.memory_mib`); the ledger places by it. */
  device: { kind: 'cpu' | 'gpu'; threadsPerReplica: number; memoryMiB?: number };
}

/** One granted device share; give it back with `release` when the replica goes away. */
export interface DeviceLease {
  readonly id: string;
  readonly placement: DevicePlacement;
}

/**
 * Where replica capacity comes from: LocalCapacityProvider (this machine, no arbitration) or the
 * device scheduler's ledger (shared with batch work). `L`: the provider's own lease type.
 */
export interface CapacityProvider<L extends DeviceLease = DeviceLease> {
  acquire(req: ReplicaRequest): Promise<L[]>;
  release(lease: L): void;
}
