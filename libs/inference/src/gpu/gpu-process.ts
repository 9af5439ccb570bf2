/**
 * How this process meets GPUs, set once at boot from the validated config (gateway and batch
 * bootstrap) and read on the main thread wherever session options are made (sessionOptionsFor).
 */
export interface SimulatedGpuOptions {
  /** Least time one batch takes on the simulated device (the real CPU run counts towards it). */
  msPerBatch: number;
  /** Device memory a session holds beyond its weights (CUDA context, arena), MiB. */
  baseMiB: number;
}

export interface GpuProcessSettings {
  /** This process's own CUDA_VISIBLE_DEVICES, when the operator set one (ordinals are positions in it). */
  visibleDevices?: string;
  /** Simulated CUDA (tests and CI without a GPU); never on by default. */
  simulated?: SimulatedGpuOptions;
}

let settings: GpuProcessSettings = {};

/**
 * Sets this process's GPU settings. Also puts CUDA_DEVICE_ORDER=PCI_BUS_ID in its environment (CUDA
 * reads it when it initializes, at the first CUDA session): the ledger's GPU indices are nvidia-smi's,
 * which are PCI-bus order, and CUDA's default order (fastest first) can differ on mixed machines.
 */
export function configureGpuProcess(s: GpuProcessSettings): void {
  settings = { ...s };
  process.env.CUDA_DEVICE_ORDER = 'PCI_BUS_ID';
}

export function gpuProcessSettings(): Readonly<GpuProcessSettings> {
  return settings;
}
