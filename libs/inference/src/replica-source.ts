import { measureDeviceMemory, nvidiaSmiMeter, type GpuMemoryMeter } from './gpu/cuda-memory';
import { gpuProcessSettings } from './gpu/gpu-process';
import type { ModelConfig } from './model-config';
import { ModelRunner, type InferenceRunner } from './model-runner';
import { warmUp, warmupBatchSizes, warmupInputs } from './replica-warmup';
import type { DevicePlacement, SessionFactory } from './session-factory';
import type { ModelSignature } from './tensor';
import { WorkerModelRunner } from './worker-model-runner';

/** What a model version's replicas are made from: one per backend (onnxruntime, node). */
export interface ReplicaSource {
  readonly signature: ModelSignature;
  /** OIP metadata `platform`. */
  readonly platform: string;
  /** A new replica's runner on `placement`, warmed up and ready for traffic. */
  open(placement: DevicePlacement): Promise<InferenceRunner>;
}

/**
 * `<version>/model.onnx`: a first session reads the signature (even when the config asks for 0
 * replicas), and a warm-up the signature cannot feed fails the load now, not at the first scale-up.
 */
export async function onnxReplicaSource(
  name: string,
  version: string,
  path: string,
  config: ModelConfig,
  factory?: SessionFactory,
  meter: GpuMemoryMeter = nvidiaSmiMeter,
): Promise<ReplicaSource> {
  const probe = await ModelRunner.load(path, config, { kind: 'cpu', intraOpThreads: 1 }, factory);
  await probe.release();
  if (warmupBatchSizes(config).length > 0) warmupInputs(probe.signature, config, 1);
  return {
    signature: probe.signature,
    platform: 'onnxruntime_onnx',
    async open(placement) {
      const start = async (): Promise<InferenceRunner> => {
        // Replicas run in worker threads (onnxruntime blocks its calling thread); a custom
        // session factory (tests, other runtimes) keeps them in-process.
        const runner = factory ? await ModelRunner.load(path, config, placement, factory) : await WorkerModelRunner.load(path, config, placement);
        try {
          await warmUp(runner);
        } catch (e) {
          await runner.release();
          throw new Error(`${name} v${version}: ${(e as Error).message}`);
        }
        return runner;
      };
      // A real CUDA replica of a model that declares no memory: measured after its warm-up (the
      // largest warm-up batch sizes the arena). Simulated sessions report their own figure.
      if (placement.kind !== 'cuda' || placement.uuid === null || config.device.memory_mib !== undefined || gpuProcessSettings().simulated) return start();
      const { value: runner, memoryMiB } = await measureDeviceMemory(meter, placement.uuid, start);
      if (memoryMiB !== undefined) runner.deviceMemoryMiB = memoryMiB;
      return runner;
    },
  };
}
