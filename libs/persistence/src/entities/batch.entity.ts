import { Column, Entity, Index, PrimaryColumn, Unique } from 'typeorm';

export type BatchState =
  | 'submitting'
  | 'queued'
  | 'running'
  | 'paused'
  | 'succeeded'
  | 'failed'
  | 'cancelled'
  // File batches only: stitching the parts (→ succeeded, shown `completed`), after a cancel, after expiry.
  | 'finalizing'
  | 'cancelling'
  | 'expiring'
  | 'expired';

/** `chord`: task + reducer over items; `file`: OpenAI-style requests read from an input file. */
export type BatchKind = 'chord' | 'file';

/** One submitted chord: its counters are bumped in the same transaction as each chunk's commit. */
@Entity({ name: 'batch' })
@Index('ix_batch_state_seq', ['state', 'seq'])
@Index('ix_batch_owner_seq', ['owner', 'seq'])
@Unique('uq_batch_owner_idempotency_key', ['owner', 'idempotencyKey'])
export class BatchEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  /** Monotonic order for keyset pagination. */
  @Column({ type: 'bigint', generated: 'identity', unique: true })
  seq!: string;

  /** The submitting key's principal id; NULL for batches from before ownership (admins only). */
  @Column({ type: 'text', nullable: true })
  owner!: string | null;

  /** Unique per owner, not globally. */
  @Column({ name: 'idempotency_key', type: 'text', nullable: true })
  idempotencyKey!: string | null;

  @Column({ type: 'text', default: 'chord' }) kind!: BatchKind;
  @Column({ type: 'text' }) task!: string;
  @Column({ type: 'text', nullable: true }) model!: string | null;
  @Column({ type: 'text' }) reducer!: string;
  @Column({ name: 'chunk_size', type: 'integer' }) chunkSize!: number;
  @Column({ type: 'integer', default: 0 }) priority!: number;
  /** May its chunks run on idle online share (revocable)? */
  @Column({ name: 'may_borrow', type: 'boolean', default: true }) mayBorrow!: boolean;
  @Column({ name: 'failure_policy', type: 'text', default: 'fail' }) failurePolicy!: string;
  @Column({ name: 'max_attempts', type: 'integer', default: 3 }) maxAttempts!: number;
  @Column({ type: 'text' }) state!: BatchState;
  @Column({ name: 'item_count', type: 'bigint' }) itemCount!: string;
  @Column({ name: 'chunk_count', type: 'integer' }) chunkCount!: number;
  @Column({ name: 'chunks_done', type: 'integer', default: 0 }) chunksDone!: number;
  @Column({ name: 'chunks_failed', type: 'integer', default: 0 }) chunksFailed!: number;
  @Column({ name: 'items_done', type: 'bigint', default: 0 }) itemsDone!: string;
  @Column({ name: 'items_failed', type: 'bigint', default: 0 }) itemsFailed!: string;
  @Column({ type: 'jsonb', nullable: true }) result!: unknown;
  @Column({ type: 'text', nullable: true }) error!: string | null;
  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' }) createdAt!: Date;
  @Column({ name: 'started_at', type: 'timestamptz', nullable: true }) startedAt!: Date | null;
  @Column({ name: 'finished_at', type: 'timestamptz', nullable: true }) finishedAt!: Date | null;
  /** Bytes of items and outputs kept for this batch (the owner's storage quota). */
  @Column({ name: 'stored_bytes', type: 'bigint', default: 0 }) storedBytes!: string;
  @Column({ name: 'progressed_at', type: 'timestamptz', default: () => 'now()' }) progressedAt!: Date;
  /** Device-seconds its runs held units, on owned and on borrowed share (cost attribution). */
  @Column({ name: 'device_owned_s', type: 'double precision', default: 0 }) deviceOwnedS!: number;
  @Column({ name: 'device_borrowed_s', type: 'double precision', default: 0 }) deviceBorrowedS!: number;
  /** A file batch's completion estimate at admission (null: nothing measured, or no owned share). */
  @Column({ type: 'jsonb', nullable: true }) estimate!: unknown;
  /** An NDJSON chord's items: one blob, its chunks byte ranges of it (null: items in the chunk rows). */
  @Column({ name: 'items_blob_store', type: 'text', nullable: true }) itemsBlobStore!: string | null;
  @Column({ name: 'items_blob_key', type: 'text', nullable: true }) itemsBlobKey!: string | null;
}
