import type { BlobStoreKind } from '@tandem/persistence';
import type { BatchRow } from '../batches/batch.types';

/** What only a file batch has (the `file_batch` row). */
export interface FileBatchInfo {
  inputFileId: string;
  inputBlobStore: BlobStoreKind;
  inputBlobKey: string;
  endpoint: string;
  model: string;
  version: string | null;
  completionWindow: string;
  expiresAt: Date;
  metadata: Record<string, string> | null;
  lineCount: number;
  duplicateLines: number[];
  requestsCompleted: number;
  requestsFailed: number;
  outputFileId: string | null;
  errorFileId: string | null;
  finalizingAt: Date | null;
  cancellingAt: Date | null;
}

/** Any batch with, for a file batch, its file part (null for chords). */
export type AnyBatchRow = BatchRow & { file: FileBatchInfo | null };

export type FileBatchRow = BatchRow & { file: FileBatchInfo };

/** A chunk as the finalizer stitches it. */
export interface PartRow {
  idx: number;
  state: string;
  firstLine: number;
  lines: number;
  start: number;
  end: number;
  outputPart: string | null;
  errorPart: string | null;
  error: string | null;
}

/** The states a file batch leaves for the finalizer, and where each ends. */
export const FINALIZE_TARGET = { finalizing: 'succeeded', cancelling: 'cancelled', expiring: 'expired' } as const;
export type FinalizingState = keyof typeof FINALIZE_TARGET;
export const isFinalizing = (s: string): s is FinalizingState => s in FINALIZE_TARGET;
