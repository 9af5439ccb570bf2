export * from './node-model.backend';
export * from './node-model.runner';
export * from './node-model.host';
export * from './node-replica.wire';
