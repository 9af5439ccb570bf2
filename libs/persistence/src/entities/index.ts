import { AuditLogEntity } from './audit-log.entity';

export { AuditLogEntity };

/** Every entity the data source knows; later capabilities append theirs here. */
export const ENTITIES = [AuditLogEntity];
