import type { ProcessControl } from '@tandem/inference';
import type { Preemptible, UnitPidSlots } from '@tandem/scheduler';

/**
 * What BatchCapacity suspends and resumes for one run: the unit process once the run has one.
 * A revocation that lands while the process is still being taken or started stops it on arrival.
 */
export class UnitProcessHold implements Preemptible {
  private proc: ProcessControl | null = null;
  private stopped = false;
  private killed = false;
  private slot: number | null = null;

  /** `slots`: the revocation fast path's table, where the process is registered against its unit's slot while it holds one. */
  constructor(private readonly slots: UnitPidSlots | null = null) {}

  seated(slot: number | null): void {
    this.unregister();
    this.slot = slot;
    this.register();
  }

  /**
   * The process (started or loading) this run will use: it follows the hold's state from now on.
   * An idle process may come stopped from an earlier run (revoked after its answer was sent): it
   * is continued here unless this run is itself stopped, or a run would wait on it forever.
   */
  attach<P extends ProcessControl>(p: P): P {
    this.unregister();
    this.proc = p;
    this.register();
    if (this.killed) p.kill();
    else if (this.stopped) p.suspend();
    else p.resume();
    return p;
  }

  detach(): void {
    this.unregister();
    this.proc = null;
  }

  private register(): void {
    if (this.slot !== null && this.proc?.processId) this.slots?.set(this.slot, this.proc.processId);
  }

  private unregister(): void {
    if (this.slot !== null && this.proc?.processId) this.slots?.clear(this.slot, this.proc.processId);
  }

  suspend(): void {
    this.stopped = true;
    this.proc?.suspend();
  }

  resume(): void {
    this.stopped = false;
    this.proc?.resume();
  }

  kill(): void {
    this.killed = true;
    this.proc?.kill();
  }
}
