import { InferenceSession } from 'onnxruntime-node';

/**
 * Where a replica runs: a CPU share (intra-op threads) or one CUDA device. `deviceId` is the CUDA
 * index under CUDA_DEVICE_ORDER=PCI_BUS_ID; `uuid` (GPU-… or MIG-…) pins exactly the allocated
 * device where known; `memoryMiB` is the device memory the allocation holds (0: not declared).
 */
export type CudaPlacement = { kind: 'cuda'; deviceId: number; uuid: string | null; memoryMiB: number };
export type DevicePlacement = { kind: 'cpu'; intraOpThreads: number } | CudaPlacement;

/** The one seam between replicas and onnxruntime, so GPU/CPU choice stays in one place. */
export interface SessionFactory {
  create(modelPath: string, placement: DevicePlacement): Promise<InferenceSession>;
}

export function sessionOptionsFor(placement: DevicePlacement, opts: { allowSpinning?: boolean; memoryArena?: boolean } = {}): InferenceSession.SessionOptions {
  if (placement.kind === 'cuda') {
    // Not exercised on the CPU-only reference machine; needs an onnxruntime-node build with CUDA.
    return { executionProviders: [{ name: 'cuda', deviceId: placement.deviceId }, 'cpu'], graphOptimizationLevel: 'all' };
  }
  return {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    enableCpuMemArena: opts.memoryArena ?? true,
    intraOpNumThreads: placement.intraOpThreads,
    // One op at a time per replica: parallelism comes from intra-op threads and replica count.
    interOpNumThreads: 1,
    executionMode: 'sequential',
    // No busy-waiting by default: a serving replica shares cores with the HTTP event loop, and
    // spinning intra-op threads starve it (measured when sessions ran on the main thread:
    // gateway throughput fell to a third). Models may opt in via device.allow_spinning.
    extra: { session: { intra_op: { allow_spinning: opts.allowSpinning ? '1' : '0' }, inter_op: { allow_spinning: '0' } } },
  };
}

export const onnxSessionFactory: SessionFactory = {
  create: (modelPath, placement) => InferenceSession.create(modelPath, sessionOptionsFor(placement)),
};
