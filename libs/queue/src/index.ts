export * from './queue-connection';
export * from './queue-readiness';
export * from './queue.module';
