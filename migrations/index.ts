import { InitAuditLog1795552631722 } from './1795552631722-init-audit-log';
import { BatchChord1795552936121 } from './1795552936121-batch-chord';
import { SchedulerLedger1795553086077 } from './1795553086077-scheduler-ledger';

/**
 * Every migration, oldest first. Listed explicitly (not globbed) so the same list works compiled
 * and under vitest; `npm run migration:generate -- <name>` appends to it.
 */
export const MIGRATIONS = [InitAuditLog1795552631722, BatchChord1795552936121, SchedulerLedger1795553086077];
