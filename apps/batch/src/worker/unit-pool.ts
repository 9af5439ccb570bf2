import type { Logger } from '@nestjs/common';
import { ModelRepository, repositoryUnitResolver, UnitRunner, type LogLevel, type UnitModelResolver, type UnitRunnerOptions } from '@tandem/inference';
import type { AcquireRequest, BatchCapacity, UnitSlot } from '@tandem/scheduler';
import type { BatchConfig } from '../config/batch.config';
import { UnitProcessHold } from './unit-process-hold';

/** How a run asks for a unit: BatchCapacity's request without the preemption hook (the pool adds it). */
export type UnitRequest = Omit<AcquireRequest, 'preempt' | 'signal'> & { signal: AbortSignal };

/**
 * The batch worker's device units as the infer task and file batches use them: a run takes a unit
 * from BatchCapacity, then on a CPU the unit process (an idle one of the model, or a new one
 * started under the unit, so starting uses the batch's share); when a CPU unit is revoked the
 * process is stopped on the spot (UnitProcessHold) and the run is abandoned if the batch is
 * cancelled. On a GPU the run takes the unit's own process, started for that one device
 * (CUDA_VISIBLE_DEVICES = its UUID, or index; CUDA ordinal 0 inside), so a MIG instance and a
 * whole GPU are used the same way; the unit holds the memory its model declares
 * (`device.memory_mib`, else BATCH_GPU_MEMORY_MIB), and its process ends before the unit's share
 * and memory go back to the ledger. One pool per user of the units: processes of one pool share
 * its options (the infer task's item decoder).
 */
export class UnitPool {
  private repo?: ModelRepository;
  private resolver?: UnitModelResolver;
  /** GPU units: the one process of each unit (by unit id), running the model it last served. */
  private readonly gpuUnits = new Map<string, { model: string; runner: Promise<UnitRunner> }>();
  /** Every CPU unit process, idle or running, so shutdown ends them all. */
  private readonly processes = new Set<UnitRunner>();

  constructor(
    private readonly cfg: BatchConfig,
    private readonly capacity: BatchCapacity,
    private readonly logger: Logger,
    private readonly extra: Partial<UnitRunnerOptions> = {},
  ) {
    capacity.onUnitGone((id) => this.endGpuUnit(id));
    // The fast path stopped a process on what may have been a stale registration: its runner knows whether it should run.
    capacity.onFastStop((pid) => {
      for (const p of this.processes) if (p.processId === pid) p.reassert();
    });
  }

  /** The repository the gateway serves (opened on first use). */
  repository(): ModelRepository {
    if (!this.repo) {
      try {
        this.repo = new ModelRepository(this.cfg.modelRepository);
        this.resolver = repositoryUnitResolver(this.repo);
      } catch (e) {
        throw new Error(`no model repository: ${(e as Error).message}`);
      }
    }
    return this.repo;
  }

  /**
   * A unit process started off any unit, to open a model (its signature; a node model's
   * initialize) before runs: keep it in the model's idle list, or `discard` it.
   */
  async startProcess(): Promise<UnitRunner> {
    this.repository();
    const unit = await UnitRunner.start(this.options({ transport: 'process', placement: { kind: 'cpu', intraOpThreads: 1 } }));
    this.processes.add(unit);
    return unit;
  }

  async discard(unit: UnitRunner): Promise<void> {
    this.processes.delete(unit);
    await unit.release();
  }

  /** Runs `fn` on a unit: takes one (waiting as BatchCapacity decides), then gives it back. */
  async withUnit<T>(model: string, idle: UnitRunner[], req: UnitRequest, fn: (unit: UnitRunner) => Promise<T>): Promise<T> {
    const cpu = this.cfg.jobs.deviceKind === 'cpu';
    const hold = new UnitProcessHold(this.capacity.pidSlots());
    const onAbort = (): void => hold.kill(); // a stopped run is abandoned, not left stopped
    req.signal.addEventListener('abort', onAbort, { once: true });
    let slot: UnitSlot | null = null;
    let proc: UnitRunner | null = null;
    try {
      slot = await this.capacity.acquire({ ...req, ...(cpu ? {} : { memoryMiB: this.gpuMemoryMiB(model) }), preempt: cpu ? hold : undefined });
      const unit = cpu ? (proc = hold.attach(await this.takeProcess(idle, hold))) : await this.gpuUnit(model, slot);
      return await fn(unit);
    } finally {
      req.signal.removeEventListener('abort', onAbort);
      if (slot) this.capacity.release(slot);
      hold.detach();
      if (proc?.alive) {
        // A revocation can stop the process after it answered (the answer was already on its way):
        // the run is over, so the idle process is continued, not parked stopped for the next run.
        proc.resume();
        idle.push(proc);
      } else if (proc) this.processes.delete(proc);
    }
  }

  async close(): Promise<void> {
    const units = await Promise.allSettled([...this.gpuUnits.values()].map((u) => u.runner));
    this.gpuUnits.clear();
    await Promise.all([...units.map((u) => (u.status === 'fulfilled' ? u.value : null)), ...this.processes].map((r) => r?.release().catch(() => undefined)));
    this.processes.clear();
  }

  /** An idle unit process of the model, or a new one (at most one per concurrent run). */
  private async takeProcess(idle: UnitRunner[], hold: UnitProcessHold): Promise<UnitRunner> {
    for (let p = idle.pop(); p; p = idle.pop()) if (p.alive) return p;
    // A new process starts under the hold, so a revocation stops its start (and its model loads) as well.
    let spawned: UnitRunner | null = null;
    const onSpawn = (c: UnitRunner): void => {
      spawned = c;
      this.processes.add(c); // from its spawn: a fast stop of a starting process is checked against it too
      hold.attach(c);
    };
    try {
      const p = await UnitRunner.start(this.options({ transport: 'process', placement: { kind: 'cpu', intraOpThreads: 1 }, onSpawn }));
      this.processes.add(p);
      return p;
    } catch (e) {
      if (spawned) this.processes.delete(spawned);
      throw e;
    }
  }

  /** The memory a GPU unit holds for `model`: its declared `device.memory_mib` (undefined: BatchCapacity's default). */
  private gpuMemoryMiB(model: string): number | undefined {
    return this.repository().find(model)?.config.device.memory_mib;
  }

  /**
   * The unit's process, pinned to the unit's device (a thread of this process could not address
   * a MIG instance, and would keep its session's memory after the unit is gone). One per unit: a
   * run of another model ends the previous model's process first, so the unit's memory holds one
   * model. Not SCHED_IDLE: its CPU work feeds a device it holds.
   */
  private async gpuUnit(model: string, slot: UnitSlot): Promise<UnitRunner> {
    const p = slot.placement;
    if (p.kind !== 'cuda') throw new Error('a CPU unit runs in a unit process');
    const held = this.gpuUnits.get(slot.unitId);
    if (held && held.model === model) {
      const r = await held.runner.catch(() => null);
      if (r?.alive) return r;
    }
    if (held) await this.endGpuUnit(slot.unitId);
    const runner = UnitRunner.start(
      this.options({
        transport: 'process',
        placement: p,
        policy: 'inherit',
        resolve: (m, v, placement) => this.resolver!(m, v, placement, { ownProcess: true }),
      }),
    );
    this.gpuUnits.set(slot.unitId, { model, runner });
    runner.catch(() => {
      if (this.gpuUnits.get(slot.unitId)?.runner === runner) this.gpuUnits.delete(slot.unitId);
    });
    return runner;
  }

  /** The unit went (revoked, idle, stopping): its process ends, so its session frees the device's memory. */
  private async endGpuUnit(unitId: string): Promise<void> {
    const held = this.gpuUnits.get(unitId);
    if (!held) return;
    this.gpuUnits.delete(unitId);
    const r = await held.runner.catch(() => null);
    await r?.release().catch(() => undefined);
  }

  /** What every unit shares: the repository, this worker's log, the pool's extras. */
  private options(o: Pick<UnitRunnerOptions, 'transport' | 'placement'> & Partial<UnitRunnerOptions>): UnitRunnerOptions {
    const log = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
      const line = fields ? `${msg} ${JSON.stringify(fields)}` : msg;
      if (level === 'info') this.logger.log(line);
      else this.logger[level](line);
    };
    return { policy: this.cfg.jobs.unitCpuPolicy, resolve: this.resolver!, log, ...this.extra, ...o };
  }
}
