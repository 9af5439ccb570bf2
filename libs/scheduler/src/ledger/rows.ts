import { SchedulerAllocationEntity, SchedulerDeviceEntity, SchedulerNodeEntity, selectColumns } from '@tandem/persistence';
import type { AllocationKind, AllocationView, DeviceKind, DeviceView, MigFilter, NodeStatus, NodeView } from '../scheduler.types';
import type { LedgerAllocation, LedgerDevice } from './placement';
import { iso } from './sql';

/**
 * The ledger's tables as its raw queries read them. A row type is the entity's shape (the
 * entity is what migrations are generated from) and its SELECT list is derived from the
 * entity's decorators, so a table is described once; each view has one mapper here.
 */

// sched_allocation

export type AllocationRow = SchedulerAllocationEntity;
export const ALLOCATION_COLUMNS = selectColumns(SchedulerAllocationEntity);

export function toAllocationView(r: AllocationRow): AllocationView {
  return {
    id: r.id,
    groupId: r.groupId,
    deviceId: r.deviceId,
    kind: r.kind,
    state: r.state,
    share: r.shareMilli / 1000,
    memoryMiB: r.memoryMiB,
    borrowed: r.borrowed,
    holder: r.holder,
    holderNode: r.holderNode,
    leaseExpiresAt: iso(r.leaseExpiresAt)!,
    revokeDeadline: iso(r.revokeDeadline),
    createdAt: iso(r.createdAt)!,
  };
}

/** What placement reads of an allocation (the hot transaction reads no more than it needs). */
const LEDGER_ALLOCATION_KEYS = ['id', 'deviceId', 'kind', 'state', 'shareMilli', 'memoryMiB', 'borrowed', 'createdAt'] as const;
export type LedgerAllocationRow = Pick<AllocationRow, (typeof LEDGER_ALLOCATION_KEYS)[number]>;
export const ledgerAllocationColumns = (alias?: string): string => selectColumns(SchedulerAllocationEntity, { alias, only: LEDGER_ALLOCATION_KEYS });

export function toLedgerAllocation(r: LedgerAllocationRow): LedgerAllocation {
  const { createdAt, ...rest } = r;
  return { ...rest, createdAtMs: createdAt.getTime() };
}

/** A row placement inserts (the lease columns are filled in by the transaction). */
export type NewAllocation = Pick<AllocationRow, 'id' | 'groupId' | 'deviceId' | 'kind' | 'shareMilli' | 'memoryMiB' | 'borrowed'> & {
  state: 'pending' | 'active';
};

/** A share told to give its capacity back (the RETURNING of the revoke). */
export interface RevokedRow {
  id: string;
  groupId: string;
  deviceId: string;
  holder: string;
  deadline: Date;
}

/** A deleted allocation (the RETURNING of a release). */
export interface ReleasedRow {
  id: string;
  groupId: string;
  deviceId: string;
  holder: string;
  kind: AllocationKind;
}

// sched_device

export type DeviceRow = SchedulerDeviceEntity;
export const deviceColumns = (alias?: string): string => selectColumns(SchedulerDeviceEntity, { alias });

/** A device row with its node's status and the usage of its allocations (InventoryRepository's listing). */
export interface DeviceUsageRow extends DeviceRow {
  nodeStatus: NodeStatus;
  usedOnline: number;
  usedBatch: number;
  usedBorrowed: number;
  pendingOnline: number;
  usedMem: number;
  allocations: number;
}

export function toDeviceView(r: DeviceUsageRow): DeviceView {
  return {
    id: r.id,
    node: r.nodeName,
    nodeStatus: r.nodeStatus,
    localId: r.localId,
    kind: r.kind,
    source: r.source,
    model: r.model,
    gpuIndex: r.gpuIndex,
    gpuUuid: r.gpuUuid,
    migMode: r.migMode,
    parentGpuUuid: r.parentGpuUuid,
    migProfile: r.migProfile,
    migDeviceIndex: r.migDeviceIndex,
    computeFraction: r.computeMilli === null ? null : r.computeMilli / 1000,
    cores: r.cores,
    memoryMiB: r.memoryMiB,
    drained: r.drained,
    partition: { deviceId: r.id, online: r.onlineMilli / 1000, batch: r.batchMilli / 1000, batchMayBorrow: r.batchMayBorrow },
    used: {
      online: r.usedOnline / 1000,
      batch: r.usedBatch / 1000,
      borrowed: r.usedBorrowed / 1000,
      pendingOnline: r.pendingOnline / 1000,
      memoryMiB: r.usedMem,
      memoryFreeMiB: Math.max(0, r.memoryMiB - r.usedMem),
      allocations: r.allocations,
    },
  };
}

const LEDGER_DEVICE_KEYS = ['id', 'memoryMiB', 'onlineMilli', 'batchMilli', 'batchMayBorrow'] as const satisfies readonly (keyof LedgerDevice)[];
export const ledgerDeviceColumns = (alias?: string): string => selectColumns(SchedulerDeviceEntity, { alias, only: LEDGER_DEVICE_KEYS });

/** A device placement may use, with what a grant needs to name it. */
const CANDIDATE_KEYS = [...LEDGER_DEVICE_KEYS, 'nodeName', 'kind', 'source', 'cores', 'gpuIndex', 'gpuUuid'] as const;
export type CandidateDevice = Pick<DeviceRow, (typeof CANDIDATE_KEYS)[number]>;
export const candidateColumns = (alias?: string): string => selectColumns(SchedulerDeviceEntity, { alias, only: CANDIDATE_KEYS });

/** What an admin change of a device's partition or drain flag locks and reads. */
const PARTITION_KEYS = ['onlineMilli', 'batchMilli', 'batchMayBorrow', 'drained'] as const;
export type PartitionRow = Pick<DeviceRow, (typeof PARTITION_KEYS)[number]>;
export const PARTITION_COLUMNS = selectColumns(SchedulerDeviceEntity, { only: PARTITION_KEYS });

export interface CandidateFilter {
  deviceKind?: DeviceKind;
  nodes?: string[];
  devices?: string[];
  /** AllocationRequest's GPU constraints: MIG instances in or out, and a CUDA_VISIBLE_DEVICES-style list. */
  mig?: MigFilter;
  gpus?: string[];
}

// sched_node

export type NodeRow = SchedulerNodeEntity;
export const NODE_COLUMNS = selectColumns(SchedulerNodeEntity);

export function toNodeView(n: NodeRow): NodeView {
  return { ...n, registeredAt: iso(n.registeredAt)!, lastHeartbeatAt: iso(n.lastHeartbeatAt)! };
}
