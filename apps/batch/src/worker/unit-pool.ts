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
 * started under the unit, so starting uses the batch's share), on a GPU the unit's worker thread;
 * when the unit is revoked the process is stopped on the spot (UnitProcessHold) and the run is
 * abandoned if the batch is cancelled. One pool per user of the units: processes of one pool
 * share its options (the infer task's item decoder).
 */
export class UnitPool {
  private repo?: ModelRepository;
  private resolver?: UnitModelResolver;
  /** GPU units: one thread per (model, unit, device), started on first use and kept. */
  private readonly gpuUnits = new Map<string, Promise<UnitRunner>>();
  /** Every CPU unit process, idle or running, so shutdown ends them all. */
  private readonly processes = new Set<UnitRunner>();

  constructor(
    private readonly cfg: BatchConfig,
    private readonly capacity: BatchCapacity,
    private readonly logger: Logger,
    private readonly extra: Partial<UnitRunnerOptions> = {},
  ) {}

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
    const hold = new UnitProcessHold();
    const onAbort = (): void => hold.kill(); // a stopped run is abandoned, not left stopped
    req.signal.addEventListener('abort', onAbort, { once: true });
    let slot: UnitSlot | null = null;
    let proc: UnitRunner | null = null;
    try {
      slot = await this.capacity.acquire({ ...req, preempt: cpu ? hold : undefined });
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
    const units = await Promise.allSettled([...this.gpuUnits.values()]);
    this.gpuUnits.clear();
    await Promise.all([...units.map((u) => (u.status === 'fulfilled' ? u.value : null)), ...this.processes].map((r) => r?.release().catch(() => undefined)));
    this.processes.clear();
  }

  /** An idle unit process of the model, or a new one (at most one per concurrent run). */
  private async takeProcess(idle: UnitRunner[], hold: UnitProcessHold): Promise<UnitRunner> {
    for (let p = idle.pop(); p; p = idle.pop()) if (p.alive) return p;
    // A new process starts under the hold, so a revocation stops its start (and its model loads) as well.
    const p = await UnitRunner.start(this.options({ transport: 'process', placement: { kind: 'cpu', intraOpThreads: 1 }, onSpawn: (c) => hold.attach(c) }));
    this.processes.add(p);
    return p;
  }

  private gpuUnit(model: string, slot: UnitSlot): Promise<UnitRunner> {
    const p = slot.placement;
    if (p.kind !== 'cuda') throw new Error('a CPU unit runs in a unit process');
    const key = `${model}|cuda:${p.deviceId}#${slot.unit}`;
    let r = this.gpuUnits.get(key);
    if (!r) {
      r = UnitRunner.start(this.options({ transport: 'thread', placement: { kind: 'cuda', deviceId: p.deviceId, uuid: p.uuid, memoryMiB: p.memoryMiB } }));
      this.gpuUnits.set(key, r);
      r.catch(() => this.gpuUnits.delete(key));
    }
    return r;
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
