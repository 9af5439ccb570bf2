import type { CudaPlacement, DevicePlacement } from '../placement';

/**
 * nvidia-smi numbers GPUs by PCI bus; CUDA by default numbers them fastest-first. The ledger's
 * indices are nvidia-smi's, so every Tandem process that may touch a GPU runs with this order.
 */
export const CUDA_DEVICE_ORDER = 'PCI_BUS_ID';

/**
 * Where a session's process stands towards the GPUs:
 * - `own-process`: a process started for this one placement (it gets CUDA_VISIBLE_DEVICES=<uuid or
 *   index>, so inside it the device is CUDA ordinal 0);
 * - `shared`: a process serving several devices from threads (the gateway's replicas, the batch
 *   worker's GPU units). Its ordinals are PCI-bus order, or positions in its own
 *   CUDA_VISIBLE_DEVICES (`visibleDevices`) when the operator restricted it.
 */
export type CudaScope = { kind: 'own-process' } | { kind: 'shared'; visibleDevices?: string };

export interface CudaBinding {
  /** The CUDA EP's device_id inside the process. */
  deviceId: number;
  /** Environment the process must start with (own-process), or must already have (shared: the order only). */
  env: Record<string, string>;
}

const isMig = (uuid: string | null | undefined): boolean => typeof uuid === 'string' && uuid.startsWith('MIG-');

/** CUDA_VISIBLE_DEVICES as a list (undefined: unset, every GPU visible; '' hides them all). */
function visibleList(visibleDevices: string | undefined): string[] | undefined {
  return visibleDevices
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/**
 * The GPU devices a `shared` process can be placed on, as the ledger's allocation constraints
 * (`mig`, `gpus`): exactly those cudaBinding accepts for it. Seeing every GPU, or several named
 * ones, it cannot address a MIG instance, so MIG is excluded; pinned to one MIG instance
 * (CUDA_VISIBLE_DEVICES=MIG-…), that instance is the only device it may have.
 */
export interface AddressableGpus {
  mig: 'exclude' | 'allow';
  /** Only these (indices or UUIDs, as CUDA_VISIBLE_DEVICES names them); absent: any GPU. */
  gpus?: string[];
}

export function sharedProcessGpus(visibleDevices: string | undefined): AddressableGpus {
  const visible = visibleList(visibleDevices);
  if (visible === undefined) return { mig: 'exclude' };
  if (visible.length === 1 && isMig(visible[0])) return { mig: 'allow', gpus: visible };
  return { mig: 'exclude', gpus: visible };
}

/**
 * The one mapping from an allocation to what CUDA sees. A MIG instance is only addressable from a
 * process that sees it alone (CUDA enumerates one MIG instance per process), so in a shared process
 * it must be that process's only visible device; anything else is refused, never guessed.
 */
export function cudaBinding(placement: CudaPlacement, scope: CudaScope): CudaBinding {
  if (scope.kind === 'own-process') {
    return { deviceId: 0, env: { CUDA_DEVICE_ORDER, CUDA_VISIBLE_DEVICES: placement.uuid ?? String(placement.deviceId) } };
  }
  const env = { CUDA_DEVICE_ORDER };
  const visible = visibleList(scope.visibleDevices);
  const name = placement.uuid ?? `GPU ${placement.deviceId}`;
  if (visible === undefined) {
    if (isMig(placement.uuid))
      throw new Error(`MIG instance ${name} needs a process of its own (CUDA_VISIBLE_DEVICES=${placement.uuid}); this process sees every GPU`);
    return { deviceId: placement.deviceId, env };
  }
  const at = visible.findIndex((v) => v === placement.uuid || v === String(placement.deviceId));
  if (at < 0) throw new Error(`${name} is not visible to this process (CUDA_VISIBLE_DEVICES=${scope.visibleDevices})`);
  if (isMig(placement.uuid) && visible.length > 1)
    throw new Error(`MIG instance ${name} must be this process's only visible device (CUDA_VISIBLE_DEVICES=${scope.visibleDevices})`);
  return { deviceId: at, env };
}

/**
 * Environment for a child process that runs one placement: a CUDA placement pins it to its
 * device; a CPU placement hides every GPU (a CPU unit holds no GPU allocation to use).
 */
export function processGpuEnv(placement: DevicePlacement): Record<string, string> {
  if (placement.kind === 'cuda') return cudaBinding(placement, { kind: 'own-process' }).env;
  return { CUDA_DEVICE_ORDER, CUDA_VISIBLE_DEVICES: '' };
}
