import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

/** Who changed what, when: every admin action (partitions, drains, keys) appends one row. */
@Entity({ name: 'audit_log' })
@Index('ix_audit_log_at', ['at'])
export class AuditLogEntity {
  @PrimaryGeneratedColumn('identity', { type: 'bigint' })
  id!: string;

  @CreateDateColumn({ type: 'timestamptz' })
  at!: Date;

  /** The principal: an API key id, `bootstrap`, or `system`. */
  @Column({ type: 'text' })
  actor!: string;

  /** A dotted verb, e.g. `partition.update`, `device.drain`. */
  @Column({ type: 'text' })
  action!: string;

  /** What it acted on, e.g. `device:node-a/gpu0`. */
  @Column({ type: 'text' })
  target!: string;

  @Column({ type: 'jsonb', default: {} })
  details!: Record<string, unknown>;
}
