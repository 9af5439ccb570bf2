import { z } from 'zod';
import { env } from '@tandem/shared';
import type { GpuProcessSettings } from './gpu-process';

/** GPU environment of a process that runs sessions (gateway, batch): validated with its config. */
export const gpuEnvSchema = {
  /**
   * Simulated CUDA (tests and CI without a GPU): GPU allocations run on the CPU with real outputs,
   * holding simulated device memory (more than the allocation holds fails with CUDA's out-of-memory
   * error) and taking at least TANDEM_SIMULATED_GPU_MS_PER_BATCH per batch. Never on by default.
   */
  TANDEM_SIMULATED_GPU: env.bool(false),
  TANDEM_SIMULATED_GPU_MS_PER_BATCH: env.int(5, 0, 600_000),
  /** Device memory a simulated session holds beyond twice its weights (CUDA context, arena), MiB. */
  TANDEM_SIMULATED_GPU_BASE_MIB: env.int(256, 0, 1_048_576),
  /** The operator's restriction of this process's GPUs; CUDA ordinals are positions in it. */
  CUDA_VISIBLE_DEVICES: z.string().optional(),
};

type GpuEnv = {
  TANDEM_SIMULATED_GPU: boolean;
  TANDEM_SIMULATED_GPU_MS_PER_BATCH: number;
  TANDEM_SIMULATED_GPU_BASE_MIB: number;
  CUDA_VISIBLE_DEVICES?: string | undefined;
};

export function toGpuProcessSettings(e: GpuEnv): GpuProcessSettings {
  return {
    ...(e.CUDA_VISIBLE_DEVICES !== undefined ? { visibleDevices: e.CUDA_VISIBLE_DEVICES } : {}),
    ...(e.TANDEM_SIMULATED_GPU ? { simulated: { msPerBatch: e.TANDEM_SIMULATED_GPU_MS_PER_BATCH, baseMiB: e.TANDEM_SIMULATED_GPU_BASE_MIB } } : {}),
  };
}
