/** The command that installs onnxruntime-node's CUDA provider (README, "GPUs"). */
export const CUDA_INSTALL_HINT =
  'install onnxruntime-node\'s CUDA 12 provider: `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node --allow-scripts=onnxruntime-node` (README, "GPUs")';

/** onnxruntime's "cannot load the CUDA provider" errors, with how to install it appended. */
export function withCudaHint(e: unknown): Error {
  const message = e instanceof Error ? e.message : String(e);
  if (
    !/AppendExecutionProvider_Cuda|providers_cuda|providers_shared|CUDA execution provider is not enabled/i.test(message) ||
    message.includes(CUDA_INSTALL_HINT)
  ) {
    return e instanceof Error ? e : new Error(message);
  }
  return new Error(`onnxruntime's CUDA execution provider is not available (${message.trim()}); ${CUDA_INSTALL_HINT}`);
}
