import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * A batch over a file (OpenAI's Batch API): the `batch` row of kind `file` holds state and
 * counters; this row holds what only file batches have. The input is referenced, never copied.
 */
@Entity({ name: 'file_batch' })
@Index('ix_file_batch_expires_at', ['expiresAt'])
@Index('ix_file_batch_input_file', ['inputFileId'])
export class FileBatchEntity {
  @PrimaryColumn({ name: 'batch_id', type: 'uuid' }) batchId!: string;
  @Column({ name: 'input_file_id', type: 'text' }) inputFileId!: string;
  @Column({ name: 'input_blob_store', type: 'text' }) inputBlobStore!: string;
  @Column({ name: 'input_blob_key', type: 'text' }) inputBlobKey!: string;
  @Column({ type: 'text' }) endpoint!: string;
  @Column({ type: 'text' }) model!: string;
  @Column({ type: 'text', nullable: true }) version!: string | null;
  @Column({ name: 'completion_window', type: 'text' }) completionWindow!: string;
  @Column({ name: 'expires_at', type: 'timestamptz' }) expiresAt!: Date;
  @Column({ type: 'jsonb', nullable: true }) metadata!: Record<string, string> | null;
  @Column({ name: 'line_count', type: 'integer' }) lineCount!: number;
  /** 1-based line numbers whose custom_id appeared on an earlier line (found by the validation scan). */
  @Column({ name: 'duplicate_lines', type: 'jsonb', default: () => "'[]'" }) duplicateLines!: number[];
  @Column({ name: 'requests_completed', type: 'integer', default: 0 }) requestsCompleted!: number;
  @Column({ name: 'requests_failed', type: 'integer', default: 0 }) requestsFailed!: number;
  @Column({ name: 'output_file_id', type: 'text', nullable: true }) outputFileId!: string | null;
  @Column({ name: 'error_file_id', type: 'text', nullable: true }) errorFileId!: string | null;
  @Column({ name: 'finalizing_at', type: 'timestamptz', nullable: true }) finalizingAt!: Date | null;
  @Column({ name: 'cancelling_at', type: 'timestamptz', nullable: true }) cancellingAt!: Date | null;
}

/** Every part blob a chunk attempt wrote, committed or not: the finalizer deletes them all once stitched. */
@Entity({ name: 'file_batch_blob' })
@Index('ix_file_batch_blob_batch', ['batchId'])
export class FileBatchBlobEntity {
  @PrimaryColumn({ name: 'blob_key', type: 'text' }) blobKey!: string;
  @Column({ name: 'batch_id', type: 'uuid' }) batchId!: string;
  @Column({ name: 'blob_store', type: 'text' }) blobStore!: string;
  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' }) createdAt!: Date;
}
