/** Why a request did not get an answer from the model. */
export type RejectReason = 'queue_full' | 'deadline_exceeded' | 'no_replica' | 'model_error';

/**
 * Hooks the serving path reports to (the gateway turns them into Prometheus metrics);
 * keeps @tandem/inference free of any metrics library.
 */
export interface InferenceObserver {
  queueDepth(model: string, version: string, depth: number): void;
  /** One request left the queue for a replica after `queueMs`. */
  dequeued(model: string, version: string, queueMs: number): void;
  /** One merged batch ran: `items` rows from `requests` requests in `computeMs`. */
  batch(model: string, version: string, items: number, requests: number, computeMs: number): void;
  rejected(model: string, version: string, reason: RejectReason): void;
  /** A replica's thread was replaced (node models: it crashed, ran out of memory, or hung past a deadline). */
  replicaRestarted?(model: string, version: string, reason: ReplicaRestartReason): void;
}

export type ReplicaRestartReason = 'crashed' | 'out_of_memory' | 'hung';

export const NOOP_OBSERVER: InferenceObserver = {
  queueDepth: () => undefined,
  dequeued: () => undefined,
  batch: () => undefined,
  rejected: () => undefined,
};
