// The response types of the endpoints the panel calls: imported from the controllers' and
// services' own declarations (type-only, erased from the bundle), never re-declared here.
export type { AllocationView, AuditPage, DeviceView, NodeView, PartitionView } from '@tandem/scheduler';
export type { Principal } from '@tandem/auth';
export type { DeviceCost } from '../../hybrid/batch-cost.service';
export type { ModelView } from '../models-admin.service';
export type { BatchHistory, DeviceHistory, HistoryView, ModelHistory, RevocationMark } from '../panel-history.types';
export type { BatchView } from '../../../../batch/src/batches/batch.view';
export type { ErrorView } from '../../../../batch/src/batches/batch-query.service';
export type { AnyBatchList } from '../../../../batch/src/file-batches/file-batch.service';
