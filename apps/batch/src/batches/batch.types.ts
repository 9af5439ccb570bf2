import type { BatchKind, BatchState, BlobStoreKind } from '@tandem/persistence';

export type FailurePolicy = 'fail' | 'continue';

export const PUBLIC_STATES = ['queued', 'running', 'paused', 'succeeded', 'failed', 'cancelled'] as const;
export type PublicBatchState = (typeof PUBLIC_STATES)[number];

/** A batch row as the services see it (counters as numbers: they stay far below 2^53). */
export interface BatchRow {
  id: string;
  seq: number;
  kind: BatchKind;
  /** The submitting key's principal id; null for batches from before ownership (admins only). */
  owner: string | null;
  idempotencyKey: string | null;
  task: string;
  model: string | null;
  reducer: string;
  chunkSize: number;
  priority: number;
  /** May its chunks use borrowed (idle online) device share? */
  mayBorrow: boolean;
  failurePolicy: FailurePolicy;
  maxAttempts: number;
  state: BatchState;
  itemCount: number;
  chunkCount: number;
  chunksDone: number;
  chunksFailed: number;
  itemsDone: number;
  itemsFailed: number;
  result: unknown;
  error: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** Bytes of items and outputs this batch keeps in Postgres (counted against the owner's quota). */
  storedBytes: number;
  /** Unit-seconds its runs held batch device units, on owned and on borrowed share (cost attribution). */
  deviceSeconds?: { owned: number; borrowed: number };
  /** A file batch's admission estimate; null when none could be made (docs/architecture.md, "Deadlines"). */
  estimate?: BatchEstimate | null;
}

/** How admission judged a file batch's deadline. */
export interface BatchEstimate {
  /** ISO time the batch was expected to finish at admission. */
  completionAt: string;
  /** Its own work, in seconds on the owned units. */
  ownSeconds: number;
  /** Earlier-deadline work admitted before it on the same units, in seconds. */
  aheadSeconds: number;
  /** Measured lines per second of one unit. */
  perUnitRate: number;
  /** Owned batch units it counts on. */
  units: number;
}

/** Whose batches a caller may see and act on: its own, or (admin scope) everyone's. */
export interface Tenant {
  id: string;
  admin: boolean;
}

/** What one owner holds right now; the submission quotas compare against it. */
export interface OwnerUsage {
  /** Batches queued, running or paused. */
  openBatches: number;
  /** Items of open batches not yet done or dead-lettered. */
  queuedItems: number;
  storedBytes: number;
}

/** What a submission decides; the rest of a BatchRow is state the batch accumulates. */
export type NewBatch = Pick<
  BatchRow,
  'id' | 'owner' | 'idempotencyKey' | 'task' | 'model' | 'reducer' | 'chunkSize' | 'priority' | 'mayBorrow' | 'failurePolicy' | 'maxAttempts'
>;

/** What a worker needs to run one chunk. */
export interface ChunkWork {
  kind: BatchKind;
  batchState: BatchState;
  chunkState: string;
  task: string;
  model: string | null;
  reducer: string;
  priority: number;
  mayBorrow: boolean;
  /** Inline chord items (empty when they are a byte range of `itemsBlob`). */
  items: unknown[];
  /** Items in the chunk. */
  itemCount: number;
  /** File batches: the chunk's input bytes [start, end) and the 1-based number of its first line; NDJSON chords: its bytes of `itemsBlob`. */
  range: { start: number; end: number; firstLine: number } | null;
  /** An NDJSON chord's uploaded items (chunks are byte ranges of it); null for inline items and file batches. */
  itemsBlob: { store: BlobStoreKind; key: string } | null;
}

export interface ChunkOutcome {
  /** False when the chunk was already settled (a duplicate or retried delivery): nothing counted. */
  counted: boolean;
  /** True for the one commit that settled the batch (the fan-in ran in it). */
  finalized: boolean;
}

export interface ChunkPage {
  idx: number;
  firstItem: number;
  itemCount: number;
  state: string;
  outputs: unknown[] | null;
  error: string | null;
  attempts: number;
}
