import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

export type BatchFileStatus = 'uploading' | 'processed';

/**
 * A file of the Files API (`file-…`): metadata and where its bytes are (a blob store and key);
 * the bytes themselves never sit in this row. `uploading` rows are invisible to the API; their
 * `expires_at` is a grace period after which the sweeper removes what an interrupted upload left.
 */
@Entity({ name: 'batch_file' })
@Index('ix_batch_file_owner_seq', ['owner', 'seq'])
@Index('ix_batch_file_expires_at', ['expiresAt'])
export class BatchFileEntity {
  @PrimaryColumn({ type: 'text' }) id!: string;
  /** Monotonic order for keyset pagination. */
  @Column({ type: 'bigint', generated: 'identity', unique: true }) seq!: string;
  /** The uploading key's principal id. */
  @Column({ type: 'text' }) owner!: string;
  @Column({ type: 'text' }) purpose!: string;
  @Column({ type: 'text' }) filename!: string;
  @Column({ type: 'text' }) status!: BatchFileStatus;
  @Column({ type: 'bigint', default: 0 }) bytes!: string;
  @Column({ name: 'line_count', type: 'integer', default: 0 }) lineCount!: number;
  @Column({ type: 'text', nullable: true }) sha256!: string | null;
  @Column({ name: 'blob_store', type: 'text' }) blobStore!: 'postgres' | 'disk';
  @Column({ name: 'blob_key', type: 'text' }) blobKey!: string;
  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' }) createdAt!: Date;
  @Column({ name: 'expires_at', type: 'timestamptz' }) expiresAt!: Date;
}
