import { Column, Entity, PrimaryColumn } from 'typeorm';

export type SchedulerNodeStatus = 'alive' | 'lost' | 'left';

/** One machine (or simulated machine) taking part in the device ledger; heartbeats keep it `alive`. */
@Entity({ name: 'sched_node' })
export class SchedulerNodeEntity {
  /** Unique node name (SCHEDULER_NODE_NAME, default the hostname). */
  @PrimaryColumn({ type: 'text' })
  name!: string;

  @Column({ type: 'text', default: 'alive' })
  status!: SchedulerNodeStatus;

  @Column({ type: 'text' })
  hostname!: string;

  @Column({ type: 'int', nullable: true })
  pid!: number | null;

  @Column({ name: 'registered_at', type: 'timestamptz', default: () => 'now()' })
  registeredAt!: Date;

  @Column({ name: 'last_heartbeat_at', type: 'timestamptz', default: () => 'now()' })
  lastHeartbeatAt!: Date;

  @Column({ type: 'jsonb', default: {} })
  info!: Record<string, unknown>;
}
