import * as fs from 'node:fs';
import * as ort from 'onnxruntime-node';
import type { InferenceSession } from 'onnxruntime-node';
import { cudaBinding, type CudaScope } from './gpu/cuda-pinning';
import { withCudaHint } from './gpu/cuda-provider';
import { gpuProcessSettings } from './gpu/gpu-process';
import { openOrtSession, type TandemSessionOptions } from './gpu/simulated-cuda';
import type { DevicePlacement } from './placement';

// The placement model lives in ./placement; re-exported for the modules that open sessions.
export type { CpuPlacement, CudaPlacement, DevicePlacement } from './placement';

/** The one seam between replicas and onnxruntime, so GPU/CPU choice stays in one place. */
export interface SessionFactory {
  create(modelPath: string, placement: DevicePlacement): Promise<InferenceSession>;
}

/**
 * Session options for a placement, made on the main thread of a process that serves several
 * devices from threads (the gateway), or for a process started for the placement (`ownProcess`). A CUDA placement gets only the CUDA EP:
 * if onnxruntime cannot load it, session creation throws instead of quietly running on the CPU
 * (nodes CUDA lacks kernels for still fall back to the CPU inside the session, as onnxruntime does).
 */
export function sessionOptionsFor(
  placement: DevicePlacement,
  opts: { allowSpinning?: boolean; memoryArena?: boolean; ownProcess?: boolean } = {},
): TandemSessionOptions {
  if (placement.kind === 'cuda') {
    const gpu = gpuProcessSettings();
    // `ownProcess`: for a process started for this placement alone (a GPU batch unit), not this one.
    const scope: CudaScope = opts.ownProcess
      ? { kind: 'own-process' }
      : { kind: 'shared', ...(gpu.visibleDevices !== undefined ? { visibleDevices: gpu.visibleDevices } : {}) };
    const { deviceId } = cudaBinding(placement, scope);
    if (gpu.simulated) {
      return {
        ...sessionOptionsFor({ kind: 'cpu', intraOpThreads: 1 }, opts),
        tandemSimulatedCuda: { deviceId, uuid: placement.uuid, allocationMiB: placement.memoryMiB, ...gpu.simulated },
      };
    }
    return { executionProviders: [{ name: 'cuda', deviceId }], graphOptimizationLevel: 'all' };
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

/**
 * Opens a session from options made by sessionOptionsFor (simulated CUDA included). A CUDA
 * provider that onnxruntime cannot load fails with the command that installs it.
 */
export async function createSession(modelPath: string, options: TandemSessionOptions): Promise<InferenceSession & { tandemMemoryMiB?: number }> {
  try {
    return await openOrtSession(ort, fs, modelPath, options);
  } catch (e) {
    throw withCudaHint(e);
  }
}

export const onnxSessionFactory: SessionFactory = {
  create: (modelPath, placement) => createSession(modelPath, sessionOptionsFor(placement)),
};
