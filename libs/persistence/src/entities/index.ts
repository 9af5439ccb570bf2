import { ApiKeyEntity, type ApiKeyScope } from './api-key.entity';
import { AuditLogEntity } from './audit-log.entity';
import { BatchEntity, type BatchKind, type BatchState } from './batch.entity';
import { BatchChunkEntity, type BatchChunkState } from './batch-chunk.entity';
import { BatchFileEntity, type BatchFileStatus } from './batch-file.entity';
import { FileBatchBlobEntity, FileBatchEntity } from './file-batch.entity';
import { SchedulerNodeEntity, type SchedulerNodeStatus } from './scheduler-node.entity';
import { SchedulerDeviceEntity, type SchedulerDeviceKind, type SchedulerDeviceSource } from './scheduler-device.entity';
import { SchedulerAllocationEntity, type SchedulerAllocationKind, type SchedulerAllocationState } from './scheduler-allocation.entity';

export { selectColumns, type ColumnKey } from './entity-columns';
export { AuditLogEntity, ApiKeyEntity, type ApiKeyScope };
export { BatchEntity, BatchChunkEntity, type BatchKind, type BatchState, type BatchChunkState };
export { BatchFileEntity, type BatchFileStatus };
export { FileBatchEntity, FileBatchBlobEntity };
export { SchedulerNodeEntity, SchedulerDeviceEntity, SchedulerAllocationEntity };
export type { SchedulerNodeStatus, SchedulerDeviceKind, SchedulerDeviceSource, SchedulerAllocationKind, SchedulerAllocationState };

/** Every entity the data source knows; later capabilities append theirs here. */
export const ENTITIES = [
  AuditLogEntity,
  ApiKeyEntity,
  BatchEntity,
  BatchChunkEntity,
  BatchFileEntity,
  FileBatchEntity,
  FileBatchBlobEntity,
  SchedulerNodeEntity,
  SchedulerDeviceEntity,
  SchedulerAllocationEntity,
];
