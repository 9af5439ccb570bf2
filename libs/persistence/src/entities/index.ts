import { AuditLogEntity } from './audit-log.entity';
import { BatchEntity, type BatchState } from './batch.entity';
import { BatchChunkEntity, type BatchChunkState } from './batch-chunk.entity';

export { AuditLogEntity };
export { BatchEntity, BatchChunkEntity, type BatchState, type BatchChunkState };

/** Every entity the data source knows; later capabilities append theirs here. */
export const ENTITIES = [AuditLogEntity, BatchEntity, BatchChunkEntity];
