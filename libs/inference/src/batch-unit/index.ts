export * from './unit-process';
export * from './unit.wire';
export * from './unit-runner';
export * from './unit-resolver';
export * from './unit-lines';
export * from './ndjson-items';
