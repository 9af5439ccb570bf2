import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

export type SchedulerAllocationKind = 'online' | 'batch';
/**
 * `pending`: an online request waiting for revoked batch shares to be released (counts against
 * admission, not against the capacity invariant); `active`; `revoking`: a borrowed batch share
 * told to give the capacity back (still counts until it is released or force-reclaimed).
 */
export type SchedulerAllocationState = 'pending' | 'active' | 'revoking';

/** One share of one device held under a lease. Released allocations are deleted. */
@Entity({ name: 'sched_allocation' })
@Index('ix_sched_allocation_device', ['deviceId'])
@Index('ix_sched_allocation_lease', ['leaseExpiresAt'])
@Index('ix_sched_allocation_group', ['groupId'])
export class SchedulerAllocationEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  /** Multi-device requests (whole devices) produce one row per device under one group. */
  @Column({ name: 'group_id', type: 'uuid' })
  groupId!: string;

  @Column({ name: 'device_id', type: 'text' })
  deviceId!: string;

  @Column({ type: 'text' })
  kind!: SchedulerAllocationKind;

  @Column({ type: 'text' })
  state!: SchedulerAllocationState;

  @Column({ name: 'share_milli', type: 'int' })
  shareMilli!: number;

  @Column({ name: 'memory_mib', type: 'int', default: 0 })
  memoryMiB!: number;

  /** A batch share that uses the online partition's idle share; revocable by online work. */
  @Column({ type: 'boolean', default: false })
  borrowed!: boolean;

  @Column({ type: 'text' })
  holder!: string;

  /** The node the holder process runs on; its leases go when that node is marked lost. */
  @Column({ name: 'holder_node', type: 'text', nullable: true })
  holderNode!: string | null;

  @Column({ name: 'lease_expires_at', type: 'timestamptz' })
  leaseExpiresAt!: Date;

  @Column({ name: 'revoke_deadline', type: 'timestamptz', nullable: true })
  revokeDeadline!: Date | null;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;
}
