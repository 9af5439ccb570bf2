export * from './entities';
export * from './data-source.options';
export * from './pg-pool';
export * from './migration-runner';
export * from './persistence.module';
export * from './audit/audit-log.repository';
export * from './blob';
