import type { InferenceSession } from 'onnxruntime-node';

/**
 * Carried in a CUDA placement's session options when the process simulates its GPUs: the session
 * is opened on the CPU (real outputs) and behaves like a CUDA one where the scheduler can see it:
 * it holds device memory, its base plus twice its weights (refusing, with onnxruntime's own out-of-memory error, more than the
 * allocation holds) and each batch takes at least `msPerBatch`.
 */
export interface SimulatedCuda {
  deviceId: number;
  uuid: string | null;
  /** Memory the allocation holds (0: not declared, unchecked). */
  allocationMiB: number;
  msPerBatch: number;
  baseMiB: number;
}

export type TandemSessionOptions = InferenceSession.SessionOptions & { tandemSimulatedCuda?: SimulatedCuda };

/**
 * Opens a session from options; the one place that honours `tandemSimulatedCuda`. Self-contained
 * (no imports or closures): replica worker threads embed its source, as they do runner-wire's.
 * A simulated session reports its device memory as `tandemMemoryMiB`.
 */
export async function openOrtSession(
  ort: { InferenceSession: { create(path: string, o: InferenceSession.SessionOptions): Promise<InferenceSession> } },
  fs: { statSync(path: string): { size: number } },
  path: string,
  options: TandemSessionOptions,
): Promise<InferenceSession & { tandemMemoryMiB?: number }> {
  const { tandemSimulatedCuda: sim, ...real } = options;
  if (!sim) return ort.InferenceSession.create(path, real);
  const needMiB = sim.baseMiB + Math.ceil((2 * fs.statSync(path).size) / (1024 * 1024));
  if (sim.allocationMiB > 0 && needMiB > sim.allocationMiB) {
    // onnxruntime's CUDA allocator message, word for word (cuda_call.cc), as session creation throws it.
    throw new Error(
      `/onnxruntime_src/onnxruntime/core/providers/cuda/cuda_call.cc:129 std::conditional_t<THRW, void, onnxruntime::common::Status> onnxruntime::CudaCall(ERRTYPE, const char*, const char*, SUCCTYPE, const char*, const char*, int) [with ERRTYPE = cudaError; bool THRW = true; SUCCTYPE = cudaError; std::conditional_t<THRW, void, onnxruntime::common::Status> = void] CUDA failure 2: out of memory ; GPU=${sim.deviceId} ; hostname=simulated ; file=/onnxruntime_src/onnxruntime/core/providers/cuda/cuda_allocator.cc ; line=47 ; expr=cudaMalloc((void**)&p, size); ` +
        `(simulated device ${sim.uuid ?? sim.deviceId}: the session needs ${needMiB} MiB, the allocation holds ${sim.allocationMiB} MiB)`,
    );
  }
  const session = await ort.InferenceSession.create(path, real);
  const wrapped = Object.create(session) as InferenceSession & { tandemMemoryMiB?: number };
  wrapped.tandemMemoryMiB = needMiB;
  const run = session.run.bind(session) as (...a: unknown[]) => Promise<InferenceSession.ReturnType>;
  (wrapped as { run: unknown }).run = async (...args: unknown[]) => {
    const t0 = Date.now();
    const out = await run(...args);
    const left = sim.msPerBatch - (Date.now() - t0);
    if (left > 0) await new Promise((r) => setTimeout(r, left));
    return out;
  };
  (wrapped as { release: unknown }).release = () => session.release();
  return wrapped;
}
