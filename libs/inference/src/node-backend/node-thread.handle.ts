import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { compileUserModule, DomainException, evaluateUserModule, tandemModulePaths, type CompiledModule } from '@tandem/shared';
import type { Tensor } from '@tandem/sdk';
import type { ReplicaRestartReason } from '../inference-observer';
import type { NodeThreadData } from './node-replica.thread';
import { markOwned } from '../tensor-ownership';
import { fromNodeWire, toNodeWire, type FromNodeThread, type LogLevel, type ToNodeThread, type WireError } from './node-replica.wire';

/** What a replica thread needs from the process that owns it. */
export interface NodeThreadHooks {
  /** ctx.infer: another model through the engine's normal path. */
  infer(model: string, version: string | undefined, inputs: Tensor[], outputs: string[] | undefined, timeoutMs: number | undefined): Promise<Tensor[]>;
  /** ctx.log and the runtime's notices about this model. */
  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void;
}

/** How a thread ended, for the log, the metric and the in-flight requests' errors. */
export interface ThreadDeath {
  reason: ReplicaRestartReason | 'released';
  /** Completes "its replica …": "crashed: boom", "exited with code 1". */
  message: string;
  /** The thread's uncaught error with its stack, for the log. */
  detail?: string;
}

let threadModule: Promise<CompiledModule> | undefined;

/** The thread's entry module, compiled once per process (TypeScript under vitest, JavaScript in dist/). */
function compiledThreadModule(): Promise<CompiledModule> {
  if (!threadModule) {
    const base = resolve(__dirname, 'node-replica.thread');
    const file = ['.ts', '.js'].map((ext) => base + ext).find((f) => existsSync(f));
    threadModule = file ? compileUserModule(file) : Promise.reject(new Error(`${base}.{ts,js} not found`));
    threadModule.catch(() => (threadModule = undefined));
  }
  return threadModule;
}

// The thread evaluates the compiled entry module like any user module (requires resolve from its file).
const BOOT = `
const { workerData, parentPort } = require('node:worker_threads');
const evaluate = ${evaluateUserModule.toString()};
evaluate(workerData.entry, workerData.modulePaths)(workerData.data, parentPort);
`;

/**
 * One node-model replica thread seen from its owner: spawn (resolves once `initialize` returned),
 * execute, and the end of the thread in whichever way it comes. A crash, an exit or running out
 * of its heap (`resourceLimits`) ends only this thread: every run in it is rejected at once.
 */
export class NodeReplicaThread {
  private seq = 0;
  private readonly runs = new Map<number, { resolve: (o: Tensor[]) => void; reject: (e: Error) => void }>();
  private readonly answered = new Map<number, () => void>();
  private readonly deathListeners: ((d: ThreadDeath) => void)[] = [];
  private starting?: { ok: () => void; fail: (e: Error) => void };
  private finalized?: () => void;
  private lastError?: ThreadDeath;
  death?: ThreadDeath;
  /** False when the model opted out of warm-up (known once started). */
  warmup = true;

  private constructor(
    private readonly worker: Worker,
    private readonly label: string,
    private readonly hooks: NodeThreadHooks,
    private readonly memoryLimitMib: number,
  ) {
    worker.on('message', (m: FromNodeThread) => this.onMessage(m));
    worker.on('error', (e: Error & { code?: string }) => {
      this.lastError =
        e.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? { reason: 'out_of_memory', message: `ran out of memory (its heap limit is device.memory_limit_mib = ${this.memoryLimitMib})` }
          : { reason: 'crashed', message: `crashed: ${e.message}`, detail: e.stack ?? e.message };
    });
    worker.on('exit', (code) => this.end(this.lastError ?? { reason: 'crashed', message: `exited with code ${code}` }));
  }

  /**
   * Starts a thread and waits for the model's `initialize` (which may already log and call other
   * models); rejects with the reason it failed.
   */
  static async spawn(data: NodeThreadData, memoryLimitMib: number, hooks: NodeThreadHooks, timeoutMs: number): Promise<NodeReplicaThread> {
    const entry = await compiledThreadModule();
    const worker = new Worker(BOOT, {
      eval: true,
      workerData: { entry, modulePaths: tandemModulePaths(), data },
      resourceLimits: { maxOldGenerationSizeMb: memoryLimitMib },
    });
    const t = new NodeReplicaThread(worker, `model '${data.name}' version ${data.version}`, hooks, memoryLimitMib);
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((ok, fail) => {
        t.starting = { ok, fail };
        timer = setTimeout(() => fail(new Error(`initialize did not finish within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
      });
    } catch (e) {
      await t.kill({ reason: 'released', message: 'failed to start' });
      throw e;
    } finally {
      clearTimeout(timer);
      t.starting = undefined;
    }
    return t;
  }

  get inflight(): number {
    return this.runs.size;
  }

  onDeath(fn: (d: ThreadDeath) => void): void {
    this.deathListeners.push(fn);
  }

  execute(
    inputs: readonly Tensor[],
    o: { outputs?: readonly string[]; requests: readonly number[]; deadlineAt?: number; warmup: boolean; transfer: boolean },
  ): { id: number; result: Promise<Tensor[]> } {
    const id = ++this.seq;
    if (this.death) return { id, result: Promise.reject(this.deathError(this.death)) };
    const result = new Promise<Tensor[]>((resolve, reject) => this.runs.set(id, { resolve, reject }));
    const wire = toNodeWire(inputs, o.transfer);
    this.post(
      {
        type: 'execute',
        id,
        inputs: wire.tensors,
        outputs: o.outputs ? [...o.outputs] : undefined,
        requests: [...o.requests],
        deadlineAt: o.deadlineAt,
        warmup: o.warmup,
      },
      wire.transfer,
    );
    return { id, result };
  }

  /** True once run `id` has been answered while the thread lives, false after `ms` or when it dies. */
  settles(id: number, ms: number): Promise<boolean> {
    if (this.death) return Promise.resolve(false);
    if (!this.runs.has(id)) return Promise.resolve(true);
    return new Promise((done) => {
      const timer = setTimeout(() => finish(false), ms);
      const finish = (ok: boolean): void => {
        clearTimeout(timer);
        this.answered.delete(id);
        done(ok && !this.death);
      };
      this.answered.set(id, () => finish(true));
      this.onDeath(() => finish(false));
    });
  }

  /** Runs the model's finalize (bounded by `ms`), then ends the thread. */
  async finalize(ms: number): Promise<void> {
    if (this.death) return;
    await new Promise<void>((done) => {
      const timer = setTimeout(done, ms);
      this.finalized = () => {
        clearTimeout(timer);
        done();
      };
      this.onDeath(() => this.finalized?.());
      this.post({ type: 'finalize' });
    });
    await this.kill({ reason: 'released', message: 'was released' });
  }

  /** Ends the thread now (a hung execute); its runs are rejected with `why`. */
  async kill(why: ThreadDeath): Promise<void> {
    if (this.death) return;
    this.lastError = why;
    await this.worker.terminate();
    this.end(why);
  }

  private post(m: ToNodeThread, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(m, transfer);
  }

  private end(d: ThreadDeath): void {
    if (this.death) return;
    this.death = d;
    this.starting?.fail(new Error(d.reason === 'released' ? d.message : `its thread ${d.message} while starting`));
    const err = this.deathError(d);
    for (const r of this.runs.values()) r.reject(err);
    this.runs.clear();
    for (const fn of this.deathListeners.splice(0)) fn(d);
  }

  private deathError(d: ThreadDeath): Error {
    // A plain Error: the 500 answer logs it with an error id; the model is at fault, not the request.
    if (d.reason === 'released') return new Error(`${this.label}: its replica ${d.message}`);
    return new Error(`${this.label}: its replica ${d.message.split('\n')[0]}; it is being restarted`);
  }

  private onMessage(m: FromNodeThread): void {
    switch (m.type) {
      case 'ready':
        this.warmup = m.warmup;
        this.starting?.ok();
        return;
      case 'init-error':
        if (m.error.stack) this.hooks.log('error', `${this.label} failed to start: ${m.error.message}`, { stack: m.error.stack });
        this.starting?.fail(new Error(m.error.message));
        return;
      case 'result':
      case 'error': {
        const r = this.runs.get(m.id);
        this.runs.delete(m.id);
        this.answered.get(m.id)?.();
        if (m.type === 'result') r?.resolve(fromNodeWire(m.outputs));
        else r?.reject(this.runError(m.error));
        return;
      }
      case 'log':
        this.hooks.log(m.level, m.msg, m.fields);
        return;
      case 'infer':
        // The message's tensors are this side's own copies: the callee's replica may take them.
        this.hooks.infer(m.model, m.version, ownedTensors(fromNodeWire(m.inputs)), m.outputs, m.timeoutMs).then(
          (outputs) => {
            if (this.death) return;
            const wire = toNodeWire(outputs, false);
            this.post({ type: 'infer-result', id: m.id, outputs: wire.tensors }, wire.transfer);
          },
          (e: unknown) => {
            if (this.death) return;
            const input = e instanceof DomainException && e.code === 'invalid_argument';
            this.post({ type: 'infer-error', id: m.id, error: { input, message: e instanceof Error ? e.message : String(e) } });
          },
        );
        return;
      case 'finalized':
        this.finalized?.();
        return;
    }
  }

  /** The model blamed the request (InputError): 400 with its message; anything else is a 500. */
  private runError(w: WireError): Error {
    if (w.input) return DomainException.invalid(w.message);
    const e = new Error(`${this.label} failed: ${w.message}`);
    const frames = w.stack?.split('\n').filter((l) => /^\s+at /.test(l)) ?? [];
    e.stack = [`Error: ${e.message}`, ...frames].join('\n');
    return e;
  }
}

function ownedTensors(tensors: Tensor[]): Tensor[] {
  for (const t of tensors) markOwned(t.data);
  return tensors;
}
