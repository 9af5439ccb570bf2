import { ApiKeys1795553933641 } from './1795553933641-api-keys';
import { InitAuditLog1795552631722 } from './1795552631722-init-audit-log';
import { BatchChord1795552936121 } from './1795552936121-batch-chord';
import { SchedulerLedger1795553086077 } from './1795553086077-scheduler-ledger';
import { BatchChunkJsonStorage1795554652717 } from './1795554652717-batch-chunk-json-storage';
import { BatchMayBorrow1795560000000 } from './1795560000000-batch-may-borrow';
import { BatchOwner1795570000000 } from './1795570000000-batch-owner';
import { BatchFiles1795580000000 } from './1795580000000-batch-files';
import { FileBatches1795590000000 } from './1795590000000-file-batches';
import { BatchDeadlinesCost1795600000000 } from './1795600000000-batch-deadlines-cost';
import { BatchItemsBlob1795610000000 } from './1795610000000-batch-items-blob';
import { SchedulerMig1795620000000 } from './1795620000000-scheduler-mig';
import { FileBatchInputIndex1795630000000 } from './1795630000000-file-batch-input-index';

/**
 * Every migration, oldest first. Listed explicitly (not globbed) so the same list works compiled
 * and under vitest; `npm run migration:generate -- <name>` appends to it.
 */
export const MIGRATIONS = [
  InitAuditLog1795552631722,
  BatchChord1795552936121,
  SchedulerLedger1795553086077,
  ApiKeys1795553933641,
  BatchChunkJsonStorage1795554652717,
  BatchMayBorrow1795560000000,
  BatchOwner1795570000000,
  BatchFiles1795580000000,
  FileBatches1795590000000,
  BatchDeadlinesCost1795600000000,
  BatchItemsBlob1795610000000,
  SchedulerMig1795620000000,
  FileBatchInputIndex1795630000000,
];
