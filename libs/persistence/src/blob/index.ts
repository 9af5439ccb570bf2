export * from './blob-store';
export * from './blob-stores';
export * from './disk-blob-store';
export * from './postgres-blob-store';
