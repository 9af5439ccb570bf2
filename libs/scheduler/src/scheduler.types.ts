import type { SchedulerAllocationKind, SchedulerAllocationState, SchedulerDeviceKind, SchedulerDeviceSource, SchedulerNodeStatus } from '@tandem/persistence';

export type AllocationKind = SchedulerAllocationKind;
export type AllocationState = SchedulerAllocationState;
export type DeviceKind = SchedulerDeviceKind;
export type DeviceSource = SchedulerDeviceSource;
export type NodeStatus = SchedulerNodeStatus;

/** One thousandth of a device: the ledger's integer unit, so sums never drift. */
export const MILLI = 1000;

export type MigFilter = 'exclude' | 'only' | 'allow';

export interface AllocationRequest {
  kind: AllocationKind;
  /** A fraction of one device in (0, 1], or a whole number N ≥ 1 of whole devices. */
  share: number;
  /** Device memory per device, MiB (0 = none asked). */
  memoryMiB?: number;
  deviceKind?: DeviceKind;
  /** Only these nodes / devices (device ids `<node>/<local>`). */
  nodes?: string[];
  devices?: string[];
  /**
   * Which GPU devices qualify (every device when absent). `mig`: `exclude` MIG instances (a
   * process that serves several devices cannot address one: CUDA shows a process one MIG instance
   * only when it is started for it), `only` MIG instances, `allow` both (default). `gpus`: only
   * these, named as CUDA_VISIBLE_DEVICES names them: a whole GPU's index, or a `GPU-…`/`MIG-…`
   * UUID (a CPU device never matches).
   */
  mig?: MigFilter;
  gpus?: string[];
  /** Who holds the lease, e.g. `gateway@node-a#1234/replica-3`. Default: this process. */
  holder?: string;
  /** Overrides the configured placement for this request. */
  placement?: 'pack' | 'spread';
}

/** What a process needs from its allocation to run on the device. */
export interface GrantedDevice {
  allocationId: string;
  deviceId: string;
  node: string;
  kind: DeviceKind;
  source: DeviceSource;
  share: number;
  memoryMiB: number;
  /** CPU: threads this share is worth (share × cores, at least 1). */
  threads: number | null;
  /** GPU: the CUDA device index and UUID for the CUDA execution provider. */
  gpuIndex: number | null;
  gpuUuid: string | null;
}

export interface AllocationGrant {
  groupId: string;
  kind: AllocationKind;
  holder: string;
  /** True when (part of) the share is the online partition's idle share: revocable. */
  borrowed: boolean;
  devices: GrantedDevice[];
  /** Value for a child process's CUDA_VISIBLE_DEVICES ('' hides every GPU, e.g. on a CPU grant). */
  cudaVisibleDevices: string;
  /** Sum of CPU threads over CPU devices (0 when the grant is GPU only). */
  threads: number;
  /** Borrowed batch allocations revoked to make room for this (online) grant. */
  preempted: number;
}

export interface RevocationNotice {
  allocationId: string;
  groupId: string;
  deviceId: string;
  holder: string;
  /** After this instant the share is force-reclaimed. */
  deadline: Date;
  reason: 'preempted' | 'expired' | 'reclaimed';
  /**
   * When the ledger revoked the share (epoch ms, the database's clock, sub-ms), for a revocation
   * announced by NOTIFY; absent when a lease renewal found it. Against this node's clock: only as
   * good as the two clocks agree (one host: exact).
   */
  revokedAtMs?: number;
}

export interface NodeView {
  name: string;
  status: NodeStatus;
  hostname: string;
  pid: number | null;
  registeredAt: string;
  lastHeartbeatAt: string;
  info: Record<string, unknown>;
}

export interface PartitionView {
  deviceId: string;
  online: number;
  batch: number;
  batchMayBorrow: boolean;
}

export interface DeviceUsageView {
  online: number;
  batch: number;
  borrowed: number;
  pendingOnline: number;
  /** Memory held by active and revoking allocations, MiB (of the device's `memoryMiB`). */
  memoryMiB: number;
  /** `memoryMiB` of the device less the above (never below 0). */
  memoryFreeMiB: number;
  allocations: number;
}

/**
 * What identifies and sizes a device, as discovered on its node and as stored in the ledger.
 * A MIG device (`localId` `gpu<i>-mig<d>`: GPU index and MIG device index as `nvidia-smi -L`
 * numbers them) is a device of its own; its parent GPU is then not schedulable as a whole.
 */
export interface DeviceIdentity {
  localId: string;
  kind: DeviceKind;
  source: DeviceSource;
  model: string;
  /** nvidia-smi's index of the physical GPU (a MIG device's parent GPU). */
  gpuIndex: number | null;
  /** `GPU-…`, or `MIG-…` for a MIG device: what CUDA_VISIBLE_DEVICES pins. */
  gpuUuid: string | null;
  migMode: string | null;
  /** MIG devices: the parent GPU's UUID, the profile (`3g.40gb`) and the MIG device index. */
  parentGpuUuid: string | null;
  migProfile: string | null;
  migDeviceIndex: number | null;
  /** Fraction of the physical GPU's compute (SM slices) this device is: 1 for a whole GPU, 3/7 for 3g; null for a CPU. */
  computeFraction: number | null;
  cores: number | null;
  /** Device memory, MiB: the total the ledger places against. */
  memoryMiB: number;
}

export interface DeviceView extends DeviceIdentity {
  id: string;
  node: string;
  nodeStatus: NodeStatus;
  drained: boolean;
  partition: PartitionView;
  used: DeviceUsageView;
}

export interface AllocationView {
  id: string;
  groupId: string;
  deviceId: string;
  kind: AllocationKind;
  state: AllocationState;
  share: number;
  memoryMiB: number;
  borrowed: boolean;
  holder: string;
  holderNode: string | null;
  leaseExpiresAt: string;
  revokeDeadline: string | null;
  createdAt: string;
}

export interface PartitionChange {
  online: number;
  batch: number;
  batchMayBorrow?: boolean;
}
