import { availableParallelism } from 'node:os';
import { replicaThreads, type CapacityProvider, type DeviceLease, type DevicePlacement, type ReplicaRequest } from './placement';

export interface LocalCapacityOptions {
  /** Cores replicas may use; threads per replica are clamped to it. Default: all cores. */
  cpuThreads?: number;
  /** CUDA devices (PCI-bus index) for `gpu` requests; none: GPU requests get nothing (never a CPU share in their place). */
  gpuDeviceIds?: number[];
}

/**
 * Grants every CPU request, and GPU requests while it has GPUs (none by default). CPU shares are time-shared, not exclusive: two models on a 2-core
 * box both get replicas (refusing one would leave it unservable), only clamped so no single
 * replica asks onnxruntime for more threads than the machine has.
 */
export class LocalCapacityProvider implements CapacityProvider {
  private readonly cpuThreads: number;
  private readonly gpus: number[];
  private next = 0;
  private seq = 0;
  private readonly live = new Set<string>();

  constructor(opts: LocalCapacityOptions = {}) {
    this.cpuThreads = Math.max(1, opts.cpuThreads ?? availableParallelism());
    this.gpus = opts.gpuDeviceIds ?? [];
  }

  async acquire(req: ReplicaRequest): Promise<DeviceLease[]> {
    const leases: DeviceLease[] = [];
    for (let i = 0; i < req.count; i++) {
      const id = `${req.model}/${req.version}#${++this.seq}`;
      let placement: DevicePlacement;
      if (req.device.kind === 'gpu') {
        if (this.gpus.length === 0) break;
        placement = { kind: 'cuda', deviceId: this.gpus[this.next++ % this.gpus.length]!, uuid: null, memoryMiB: req.device.memoryMiB ?? 0 };
      } else {
        placement = { kind: 'cpu', intraOpThreads: replicaThreads(req.device.threadsPerReplica, this.cpuThreads) };
      }
      this.live.add(id);
      leases.push({ id, placement });
    }
    return leases;
  }

  release(lease: DeviceLease): void {
    this.live.delete(lease.id);
  }

  /** Leases currently held (for tests and diagnostics). */
  get held(): number {
    return this.live.size;
  }
}
