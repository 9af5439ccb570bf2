import type { BatchRow, PublicBatchState } from './batch.types';

export interface BatchView {
  id: string;
  /** The submitting key's id (`anonymous` with auth off; null for batches from before ownership). */
  owner: string | null;
  state: PublicBatchState;
  task: string;
  model: string | null;
  reducer: string;
  chunkSize: number;
  priority: number;
  borrow: boolean;
  failurePolicy: string;
  maxAttempts: number;
  idempotencyKey: string | null;
  /** Settled items (done or dead-lettered) as a percentage of all items. */
  progress: number;
  counts: {
    items: number;
    itemsDone: number;
    itemsFailed: number;
    chunks: number;
    chunksDone: number;
    chunksFailed: number;
    chunksPending: number;
  };
  etaSeconds: number | null;
  /** Unit-seconds its runs held batch device units, on owned and on borrowed share (cost attribution). */
  deviceSeconds: { owned: number; borrowed: number };
  result: unknown;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

/** The chord API's states; a file batch's own states (issue 15) map onto the nearest of them. */
function chordState(s: BatchRow['state']): PublicBatchState {
  switch (s) {
    case 'submitting': // never committed, so never seen; mapped defensively
      return 'queued';
    case 'finalizing':
    case 'cancelling':
    case 'expiring':
      return 'running';
    case 'expired':
      return 'failed';
    default:
      return s;
  }
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

export function toView(b: BatchRow, now = Date.now()): BatchView {
  const settled = b.itemsDone + b.itemsFailed;
  const progress = b.itemCount === 0 ? 100 : Math.floor((settled / b.itemCount) * 10_000) / 100;
  let eta: number | null = null;
  if ((b.state === 'running' || b.state === 'queued') && b.startedAt && settled > 0) {
    const rate = settled / Math.max(1, now - b.startedAt.getTime());
    eta = Math.round((b.itemCount - settled) / rate / 100) / 10;
  }
  return {
    id: b.id,
    owner: b.owner,
    state: chordState(b.state),
    task: b.task,
    model: b.model,
    reducer: b.reducer,
    chunkSize: b.chunkSize,
    priority: b.priority,
    borrow: b.mayBorrow,
    failurePolicy: b.failurePolicy,
    maxAttempts: b.maxAttempts,
    idempotencyKey: b.idempotencyKey,
    progress,
    counts: {
      items: b.itemCount,
      itemsDone: b.itemsDone,
      itemsFailed: b.itemsFailed,
      chunks: b.chunkCount,
      chunksDone: b.chunksDone,
      chunksFailed: b.chunksFailed,
      chunksPending: b.chunkCount - b.chunksDone - b.chunksFailed,
    },
    etaSeconds: b.state === 'succeeded' ? 0 : eta,
    deviceSeconds: { owned: round3(b.deviceSeconds?.owned ?? 0), borrowed: round3(b.deviceSeconds?.borrowed ?? 0) },
    result: b.state === 'succeeded' ? b.result : null,
    error: b.error,
    createdAt: b.createdAt.toISOString(),
    startedAt: b.startedAt?.toISOString() ?? null,
    finishedAt: b.finishedAt?.toISOString() ?? null,
  };
}
