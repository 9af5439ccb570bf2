import { Column, Entity, PrimaryColumn } from 'typeorm';

export type BatchChunkState = 'pending' | 'done' | 'dead' | 'cancelled';

/** A chunk holds its items and outputs as arrays, so 1M items are ~1k rows, not 1M. */
@Entity({ name: 'batch_chunk' })
export class BatchChunkEntity {
  @PrimaryColumn({ name: 'batch_id', type: 'uuid' }) batchId!: string;
  @PrimaryColumn({ type: 'integer' }) idx!: number;
  @Column({ name: 'first_item', type: 'bigint' }) firstItem!: string;
  @Column({ name: 'item_count', type: 'integer' }) itemCount!: number;
  @Column({ type: 'text', default: 'pending' }) state!: BatchChunkState;
  @Column({ type: 'json' }) items!: unknown[];
  @Column({ type: 'json', nullable: true }) outputs!: unknown[] | null;
  /** The reducer's partial over this chunk; the fan-in combines these. */
  @Column({ type: 'jsonb', nullable: true }) partial!: unknown;
  @Column({ type: 'integer', default: 0 }) attempts!: number;
  @Column({ type: 'text', nullable: true }) error!: string | null;
  /** File batches: the chunk is input bytes [start_byte, end_byte), whole lines. */
  @Column({ name: 'start_byte', type: 'bigint', nullable: true }) startByte!: string | null;
  @Column({ name: 'end_byte', type: 'bigint', nullable: true }) endByte!: string | null;
  /** File batches: the committed attempt's part blobs (set in the transaction that settles the chunk). */
  @Column({ name: 'output_part', type: 'text', nullable: true }) outputPart!: string | null;
  @Column({ name: 'error_part', type: 'text', nullable: true }) errorPart!: string | null;
  @Column({ name: 'finished_at', type: 'timestamptz', nullable: true }) finishedAt!: Date | null;
}
