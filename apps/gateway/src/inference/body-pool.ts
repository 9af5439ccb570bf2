import { BufferPool } from '@tandem/shared';

/**
 * The gateway's one pool of request bodies (REST binary: binary-body.reader.ts takes,
 * oip-infer.route.ts gives back; gRPC messages of more than one chunk likewise). A body goes
 * back once nothing reads it any more: its request's inference settled (the batcher copies
 * inputs when it dispatches them, and drops a request that expires while queued).
 */
export const requestBodies = new BufferPool();
