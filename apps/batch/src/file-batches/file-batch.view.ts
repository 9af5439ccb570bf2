import type { BatchRow } from '../batches/batch.types';
import { toFileBatchId } from './file-batch.dto';
import type { AnyBatchRow } from './file-batch.types';

export type OpenAiBatchStatus = 'validating' | 'failed' | 'in_progress' | 'finalizing' | 'completed' | 'expired' | 'cancelling' | 'cancelled';

/** OpenAI's Batch object, plus Tandem's `progress` (percent settled) and `eta_seconds`. */
export interface OpenAiBatchView {
  id: string;
  object: 'batch';
  /** The OIP infer path; null for a chord batch (`metadata.task` says what it runs). */
  endpoint: string | null;
  errors: { object: 'list'; data: { code: string; message: string; line: number | null; param: string | null }[] } | null;
  input_file_id: string | null;
  completion_window: string | null;
  status: OpenAiBatchStatus;
  output_file_id: string | null;
  error_file_id: string | null;
  created_at: number;
  in_progress_at: number | null;
  expires_at: number | null;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  expired_at: number | null;
  cancelling_at: number | null;
  cancelled_at: number | null;
  request_counts: { total: number; completed: number; failed: number };
  metadata: Record<string, string> | null;
  progress: number;
  eta_seconds: number | null;
  /** When it must be finished (ISO; = expires_at): past it the batch ends `expired`. Null for a chord. */
  deadline: string | null;
  /** Admission's estimate; null when none was made (no throughput measured yet, or no owned batch share). */
  estimate: { completion_at: string; own_seconds: number; ahead_seconds: number; per_unit_rate: number; units: number } | null;
  /** Unit-seconds its runs held batch device units, on owned and on borrowed share. */
  device_seconds: { owned: number; borrowed: number };
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** Device-seconds as views show them (ms precision). */
export function deviceSecondsOf(b: BatchRow): { owned: number; borrowed: number } {
  return { owned: round3(b.deviceSeconds?.owned ?? 0), borrowed: round3(b.deviceSeconds?.borrowed ?? 0) };
}

const unix = (d: Date | null | undefined): number | null => (d ? Math.floor(d.getTime() / 1000) : null);

function statusOf(s: BatchRow['state']): OpenAiBatchStatus {
  switch (s) {
    case 'submitting':
      return 'validating';
    case 'queued':
    case 'running':
    case 'paused':
      return 'in_progress';
    case 'finalizing':
    case 'expiring':
      return 'finalizing';
    case 'succeeded':
      return 'completed';
    default:
      return s;
  }
}

/** Any batch as OpenAI's client reads it; a chord batch keeps its uuid id and has no files. */
export function toOpenAiView(b: AnyBatchRow, now = Date.now()): OpenAiBatchView {
  const f = b.file;
  const status = statusOf(b.state);
  const total = f ? f.lineCount : b.itemCount;
  const completed = f ? f.requestsCompleted : b.itemsDone;
  const failed = f ? f.requestsFailed + b.itemsFailed : b.itemsFailed;
  const settled = completed + failed;
  const progress = total === 0 ? 100 : Math.floor((Math.min(settled, total) / total) * 10_000) / 100;
  let eta: number | null = status === 'completed' ? 0 : null;
  if (status === 'in_progress' && b.startedAt && settled > 0) {
    const rate = settled / Math.max(1, now - b.startedAt.getTime());
    eta = Math.round((total - settled) / rate / 100) / 10;
  }
  const end = (s: BatchRow['state']): number | null => (b.state === s ? unix(b.finishedAt) : null);
  return {
    id: f ? toFileBatchId(b.id) : b.id,
    object: 'batch',
    endpoint: f ? f.endpoint : null,
    errors: b.state === 'failed' && b.error ? { object: 'list', data: [{ code: 'batch_failed', message: b.error, line: null, param: null }] } : null,
    input_file_id: f ? f.inputFileId : null,
    completion_window: f ? f.completionWindow : null,
    status,
    output_file_id: f?.outputFileId ?? null,
    error_file_id: f?.errorFileId ?? null,
    created_at: unix(b.createdAt)!,
    // File batches are validated while the create request waits, so they are in progress from creation.
    in_progress_at: f ? unix(b.createdAt) : unix(b.startedAt),
    expires_at: f ? unix(f.expiresAt) : null,
    finalizing_at: unix(f?.finalizingAt),
    completed_at: end('succeeded'),
    failed_at: end('failed'),
    expired_at: end('expired'),
    cancelling_at: unix(f?.cancellingAt) ?? (b.state === 'cancelled' ? unix(b.finishedAt) : null),
    cancelled_at: end('cancelled'),
    request_counts: { total, completed, failed },
    metadata: f ? f.metadata : { task: b.task, reducer: b.reducer },
    progress,
    eta_seconds: eta,
    deadline: f ? f.expiresAt.toISOString() : null,
    estimate: b.estimate
      ? {
          completion_at: b.estimate.completionAt,
          own_seconds: b.estimate.ownSeconds,
          ahead_seconds: b.estimate.aheadSeconds,
          per_unit_rate: b.estimate.perUnitRate,
          units: b.estimate.units,
        }
      : null,
    device_seconds: deviceSecondsOf(b),
  };
}
