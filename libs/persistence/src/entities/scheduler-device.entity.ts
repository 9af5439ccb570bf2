import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

export type SchedulerDeviceKind = 'gpu' | 'cpu';
/** `discovered` by probing the machine, or `declared` in config (a simulated device). */
export type SchedulerDeviceSource = 'discovered' | 'declared';

/**
 * One schedulable device and its partition. Shares are stored in thousandths of a device
 * ("milli-shares") so sums are exact integers. The partition lives on the device row because
 * every allocation locks that row anyway (`SELECT … FOR UPDATE`), so the partition and the
 * usage it constrains are read under the same lock.
 */
@Entity({ name: 'sched_device' })
@Index('ix_sched_device_node', ['nodeName'])
export class SchedulerDeviceEntity {
  /** `<node>/<localId>`, e.g. `node-a/gpu0`, `node-a/cpu`. */
  @PrimaryColumn({ type: 'text' })
  id!: string;

  @Column({ name: 'node_name', type: 'text' })
  nodeName!: string;

  @Column({ name: 'local_id', type: 'text' })
  localId!: string;

  @Column({ type: 'text' })
  kind!: SchedulerDeviceKind;

  @Column({ type: 'text' })
  source!: SchedulerDeviceSource;

  /** Marketing name (`NVIDIA H100 80GB HBM3`) or the CPU model. */
  @Column({ type: 'text' })
  model!: string;

  @Column({ name: 'gpu_index', type: 'int', nullable: true })
  gpuIndex!: number | null;

  @Column({ name: 'gpu_uuid', type: 'text', nullable: true })
  gpuUuid!: string | null;

  @Column({ name: 'mig_mode', type: 'text', nullable: true })
  migMode!: string | null;

  /** MIG devices (`<node>/gpu<i>-mig<d>`): the parent GPU's UUID; `gpu_uuid` is the MIG UUID. */
  @Column({ name: 'parent_gpu_uuid', type: 'text', nullable: true })
  parentGpuUuid!: string | null;

  /** MIG profile, e.g. `3g.40gb`. */
  @Column({ name: 'mig_profile', type: 'text', nullable: true })
  migProfile!: string | null;

  /** The MIG device index `nvidia-smi -L` prints under its GPU. */
  @Column({ name: 'mig_device_index', type: 'int', nullable: true })
  migDeviceIndex!: number | null;

  /** Thousandths of the physical GPU's compute this device is (1000 whole, 428 for 3g of 7); NULL for CPUs. */
  @Column({ name: 'compute_milli', type: 'int', nullable: true })
  computeMilli!: number | null;

  /** CPU devices: the core count (a whole CPU device = this many threads). */
  @Column({ type: 'int', nullable: true })
  cores!: number | null;

  @Column({ name: 'memory_mib', type: 'int' })
  memoryMiB!: number;

  @Column({ name: 'online_milli', type: 'int', default: 500 })
  onlineMilli!: number;

  @Column({ name: 'batch_milli', type: 'int', default: 500 })
  batchMilli!: number;

  @Column({ name: 'batch_may_borrow', type: 'boolean', default: true })
  batchMayBorrow!: boolean;

  @Column({ type: 'boolean', default: false })
  drained!: boolean;

  @Column({ name: 'updated_at', type: 'timestamptz', default: () => 'now()' })
  updatedAt!: Date;
}
