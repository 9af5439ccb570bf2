import type { DeviceLease } from './placement';
import type { InferenceRunner } from './model-runner';

export interface Replica {
  readonly id: string;
  readonly runner: InferenceRunner;
  readonly lease: DeviceLease;
  readonly maxInflight: number;
  inflight: number;
  draining: boolean;
}

/**
 * The replicas of one model version. Routing is power-of-two-choices on in-flight count
 * among replicas below their cap. Replicas can be added and removed while serving
 * (autoscaling, load/unload): a removed replica stops taking work and is released once idle.
 */
export class ReplicaPool {
  private replicas: Replica[] = [];
  private readonly drained = new Map<string, () => void>();
  /** Called whenever a replica may have capacity again (the batcher dispatches then). */
  onAvailable: () => void = () => undefined;

  constructor(private readonly random: () => number = Math.random) {}

  add(runner: InferenceRunner, lease: DeviceLease, maxInflight: number): Replica {
    const r: Replica = { id: lease.id, runner, lease, maxInflight, inflight: 0, draining: false };
    this.replicas.push(r);
    this.onAvailable();
    return r;
  }

  /** Stops routing to the replica; resolves with it once its in-flight work finished. */
  async remove(id: string): Promise<Replica | undefined> {
    const r = this.replicas.find((x) => x.id === id);
    if (!r) return undefined;
    r.draining = true;
    this.replicas = this.replicas.filter((x) => x !== r);
    if (r.inflight > 0) await new Promise<void>((res) => this.drained.set(r.id, res));
    return r;
  }

  list(): readonly Replica[] {
    return this.replicas;
  }

  get size(): number {
    return this.replicas.length;
  }

  /** Batches the pool may run at once (each replica's max_inflight). */
  get slots(): number {
    let n = 0;
    for (const r of this.replicas) if (!r.draining) n += r.maxInflight;
    return n;
  }

  get inflight(): number {
    return this.replicas.reduce((s, r) => s + r.inflight, 0);
  }

  hasCapacity(): boolean {
    return this.replicas.some((r) => r.inflight < r.maxInflight);
  }

  /** Picks a replica (P2C) and counts the work in flight; undefined when all are at their cap. */
  acquire(): Replica | undefined {
    const free = this.replicas.filter((r) => r.inflight < r.maxInflight);
    if (free.length === 0) return undefined;
    let pick = free[0]!;
    if (free.length > 1) {
      const i = Math.floor(this.random() * free.length);
      let j = Math.floor(this.random() * (free.length - 1));
      if (j >= i) j++;
      const a = free[i]!;
      const b = free[j]!;
      pick = b.inflight < a.inflight ? b : a;
    }
    pick.inflight++;
    return pick;
  }

  /** Counts work on this replica (not one the pool picks) if it has room; false when it has none or is draining. */
  take(r: Replica): boolean {
    if (r.draining || r.inflight >= r.maxInflight) return false;
    r.inflight++;
    return true;
  }

  release(r: Replica): void {
    r.inflight--;
    if (r.draining) {
      if (r.inflight === 0) {
        this.drained.get(r.id)?.();
        this.drained.delete(r.id);
      }
      return;
    }
    this.onAvailable();
  }
}
