export * from './cuda-pinning';
export * from './gpu-env';
export * from './gpu-process';
export type { SimulatedCuda, TandemSessionOptions } from './simulated-cuda';
export * from './cuda-provider';
export * from './cuda-memory';
