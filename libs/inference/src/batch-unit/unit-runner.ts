import { spawn, type ChildProcess } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { tandemModulePaths, type CompiledModule } from '@tandem/shared';
import { compiledEntry, EVALUATE_SOURCE } from '../entry-module';
import type { Tensor } from '@tandem/sdk';
import { errorFromReport } from '../node-backend/node-model.host';
import { fromNodeWire, toNodeWire, type LogLevel, type NodeWireTensor } from '../node-backend/node-replica.wire';
import type { UnitLineAnswer, UnitLinesTask } from './unit-lines';
import { unitWrappers, type ProcessControl, type UnitCpuPolicy } from './unit-process';
import { processGpuEnv } from '../gpu/cuda-pinning';
import type { DevicePlacement } from '../session-factory';
import type { FromUnit, ToUnit, UnitItemInput, UnitItemsDecoder, UnitModelSpec, UnitOpened } from './unit.wire';

export interface UnitRunnerOptions {
  /** `process`: a child process (CPU units, which the holder can stop; GPU units, pinned to their device); `thread`: a worker thread. */
  transport: 'process' | 'thread';
  placement: DevicePlacement;
  /** CPU policy of a unit process (SCHED_IDLE by default). */
  policy?: UnitCpuPolicy;
  /** Gets the process at once, before anything loads, so a holder can stop or kill it while it loads. */
  onSpawn?: (p: UnitRunner) => void;
  /** Node options of a unit process before its script (a profiler's `--cpu-prof`, for benchmarks); NODE_OPTIONS refuses those. */
  nodeArgs?: readonly string[];
  /** Lets `runItems` send raw items that the unit decodes (shipped as source). */
  itemDecoder?: UnitItemsDecoder;
  /** A repository model name (latest version when omitted) → what the unit opens. */
  resolve(model: string, version: string | undefined, placement: DevicePlacement): Promise<UnitModelSpec>;
  log?(level: LogLevel, msg: string, fields?: Record<string, unknown>): void;
}

export interface UnitRunOptions {
  version?: string;
  outputs?: readonly string[];
}

const EVALUATE = EVALUATE_SOURCE;
// A process gets the (large) entry by IPC, not on its command line; with a callback, a send to a
// parent that is gone fails quietly, and the parent closing the channel ends the unit.
const PROCESS_BOOT = `${EVALUATE}
process.on('disconnect', () => process.exit(0));
process.once('message', (boot) => {
  const handlers = [];
  process.on('message', (m) => handlers.forEach((h) => h(m)));
  evaluate(boot.entry, boot.modulePaths)({ send: (m) => process.send(m, () => undefined), onMessage: (fn) => handlers.push(fn) });
});`;
const THREAD_BOOT = `${EVALUATE}
const { workerData, parentPort } = require('node:worker_threads');
evaluate(workerData.entry, workerData.modulePaths)({ send: (m, t) => parentPort.postMessage(m, t || []), onMessage: (fn) => parentPort.on('message', fn) });`;

/** The two carriers behind one face. */
interface Carrier {
  post(m: ToUnit, transfer?: ArrayBuffer[]): void;
  onMessage(fn: (m: FromUnit) => void): void;
  onExit(fn: (why: string) => void): void;
  /** Ends it at once. */
  kill(): void;
  /** Lets it end by itself (process: its IPC channel closes). */
  close(): void;
  readonly pid: number;
  signal(s: 'SIGSTOP' | 'SIGCONT'): void;
}

/** `env`: the unit's GPU pinning (processGpuEnv: a CPU unit sees no GPU). */
function processCarrier(policy: UnitCpuPolicy, entry: CompiledModule, env: Record<string, string>, nodeArgs: readonly string[] = []): Carrier {
  const [cmd, ...args] = [...unitWrappers(policy), process.execPath, ...nodeArgs, '-e', PROCESS_BOOT];
  const child: ChildProcess = spawn(cmd!, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced', env: { ...process.env, ...env } });
  child.send({ entry, modulePaths: tandemModulePaths() });
  return {
    post: (m) => child.connected && child.send(m),
    onMessage: (fn) => child.on('message', fn),
    onExit: (fn) => {
      child.once('exit', (code, sig) => fn(`unit process exited (${sig ?? code})`));
      child.once('error', (e) => fn(`unit process failed: ${e.message}`));
    },
    kill: () => child.kill('SIGKILL'),
    close: () => child.connected && child.disconnect(),
    pid: child.pid ?? -1,
    signal: (s) => child.kill(s),
  };
}

function threadCarrier(entry: CompiledModule): Carrier {
  const worker = new Worker(THREAD_BOOT, { eval: true, workerData: { entry, modulePaths: tandemModulePaths() } });
  return {
    post: (m, transfer = []) => worker.postMessage(m, transfer),
    onMessage: (fn) => worker.on('message', fn),
    onExit: (fn) => {
      let err = '';
      worker.on('error', (e) => (err = `: ${e.message}`));
      worker.once('exit', (code) => fn(`unit thread exited (${code})${err}`));
    },
    kill: () => void worker.terminate(),
    close: () => void worker.terminate(),
    pid: process.pid,
    // A thread cannot be stopped: its unit is given back at the end of its model batch.
    signal: () => undefined,
  };
}

/**
 * A batch unit seen from the worker: a process (or a thread) that runs repository models,
 * ONNX or node, and everything node models call through ctx.infer, on the unit's share. The
 * unit asks this side to resolve model names against the repository; everything else runs there.
 */
export class UnitRunner implements ProcessControl {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (m: FromUnit) => void; reject: (e: Error) => void }>();
  private dead: Error | undefined;
  private stopped = false;
  private readonly exited: Promise<void>;

  private constructor(
    private readonly carrier: Carrier,
    private readonly opts: UnitRunnerOptions,
  ) {
    carrier.onMessage((m) => this.onMessage(m));
    this.exited = new Promise((done) =>
      carrier.onExit((why) => {
        this.dead = new Error(why);
        for (const p of this.pending.values()) p.reject(this.dead);
        this.pending.clear();
        done();
      }),
    );
  }

  /** Starts a unit and waits until it takes work (models open on first use). */
  static async start(opts: UnitRunnerOptions): Promise<UnitRunner> {
    const entry = await compiledEntry(__dirname, 'unit-host.entry');
    const carrier =
      opts.transport === 'process' ? processCarrier(opts.policy ?? 'idle', entry, processGpuEnv(opts.placement), opts.nodeArgs) : threadCarrier(entry);
    const runner = new UnitRunner(carrier, opts);
    if (opts.transport === 'process') opts.onSpawn?.(runner);
    try {
      await runner.call({ type: 'init', placement: opts.placement, decodeSource: opts.itemDecoder?.toString() }, 0);
    } catch (e) {
      carrier.kill();
      throw new Error(`cannot start a batch unit: ${(e as Error).message}`);
    }
    return runner;
  }

  get pid(): number {
    return this.carrier.pid;
  }

  get alive(): boolean {
    return this.dead === undefined;
  }

  /** Opens `model` in the unit (once; later calls answer at once): its signature, to plan items. */
  async open(model: string, version?: string): Promise<UnitOpened> {
    const id = ++this.seq;
    const m = await this.call({ type: 'open', id, model, ...(version !== undefined ? { version } : {}) }, id);
    if (m.type !== 'opened') throw new Error(`unexpected answer ${m.type}`);
    return m.model;
  }

  /** Runs raw items that the unit decodes into `itemInputs` with the decoder it was started with. */
  async runItems(model: string, items: readonly unknown[], itemInputs: UnitItemInput[], o: UnitRunOptions = {}): Promise<Tensor[]> {
    const id = ++this.seq;
    return this.result(await this.call({ type: 'run', id, model, items, itemInputs, ...this.runOpts(o) }, id));
  }

  /**
   * Runs `count` raw items given as NDJSON lines (a chunk's bytes): the unit parses and decodes
   * them on its own share, so the caller's thread only moves bytes. `ndjson` may be a view (see runLines).
   */
  async runNdjsonItems(model: string, ndjson: Uint8Array, count: number, itemInputs: UnitItemInput[], o: UnitRunOptions = {}): Promise<Tensor[]> {
    const id = ++this.seq;
    const { bytes, transfer } = this.carried(ndjson);
    return this.result(await this.call({ type: 'run', id, model, ndjson: bytes, itemCount: count, itemInputs, ...this.runOpts(o) }, id, transfer));
  }

  /**
   * Answers raw batch-file lines in the unit (parse, check, run, encode). `task.data` may be a
   * view of a bigger buffer: a process unit's channel copies just its bytes; a thread unit gets
   * a copy of them moved to it (a view would clone all of the buffer).
   */
  async runLines(task: UnitLinesTask): Promise<UnitLineAnswer[]> {
    const id = ++this.seq;
    const { bytes, transfer } = this.carried(task.data);
    const m = await this.call({ type: 'lines', id, task: { ...task, data: bytes } }, id, transfer);
    if (m.type !== 'answers') throw new Error(`unexpected answer ${m.type}`);
    return m.answers;
  }

  /** Runs ready tensors (copied to the unit). */
  async run(model: string, inputs: readonly Tensor[], o: UnitRunOptions = {}): Promise<Tensor[]> {
    const id = ++this.seq;
    const wire = toNodeWire(inputs, false);
    return this.result(await this.call({ type: 'run', id, model, inputs: wire.tensors, ...this.runOpts(o) }, id, wire.transfer));
  }

  /** Off the cores now (a process: SIGSTOP stops every thread of it before kill() returns). */
  suspend(): void {
    if (this.dead || this.stopped) return;
    this.stopped = true;
    this.carrier.signal('SIGSTOP');
  }

  resume(): void {
    if (this.dead || !this.stopped) return;
    this.stopped = false;
    this.carrier.signal('SIGCONT');
  }

  /** Its own OS process (undefined for a thread-carried unit, whose `pid` is this process's). */
  get processId(): number | undefined {
    return this.opts.transport === 'process' ? this.carrier.pid : undefined;
  }

  /** Signals the state this side holds again: another thread may have stopped the process (the revocation fast path, on a registration that was just going stale). */
  reassert(): void {
    if (!this.dead && this.opts.transport === 'process') this.carrier.signal(this.stopped ? 'SIGSTOP' : 'SIGCONT');
  }

  /** Abandons whatever runs (batch items are idempotent). */
  kill(): void {
    if (!this.dead) this.carrier.kill();
  }

  /** Finalizes the unit's node models and releases its sessions, then ends it (killed if that takes over 5 s). */
  async release(): Promise<void> {
    if (this.dead) return;
    this.resume();
    const timer = setTimeout(() => this.carrier.kill(), 5_000);
    await this.call({ type: 'close' }, -1).catch(() => undefined);
    this.carrier.close();
    await this.exited;
    clearTimeout(timer);
  }

  /** Bytes as this unit's carrier should get them: a process's channel copies a view's bytes; a thread gets its own copy, moved (the caller keeps its buffer). */
  private carried(data: Uint8Array): { bytes: Uint8Array; transfer?: ArrayBuffer[] } {
    if (this.opts.transport !== 'thread') return { bytes: data };
    const own = new Uint8Array(data);
    return { bytes: own, transfer: [own.buffer as ArrayBuffer] };
  }

  private runOpts(o: UnitRunOptions): { version?: string; outputs?: string[] } {
    return { ...(o.version !== undefined ? { version: o.version } : {}), ...(o.outputs ? { outputs: [...o.outputs] } : {}) };
  }

  private result(m: FromUnit): Tensor[] {
    if (m.type !== 'result') throw new Error(`unexpected answer ${m.type}`);
    return fromNodeWire(m.outputs as NodeWireTensor[]);
  }

  /** Sends `m` and waits for the answer keyed `key` (0: ready, -1: closed, else the message id). */
  private call(m: ToUnit, key: number, transfer?: ArrayBuffer[]): Promise<FromUnit> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.pending.set(key, { resolve, reject });
      this.carrier.post(m, transfer);
    });
  }

  private onMessage(m: FromUnit): void {
    switch (m.type) {
      case 'ready':
      case 'closed':
        this.settle(m.type === 'ready' ? 0 : -1, m);
        return;
      case 'opened':
      case 'result':
      case 'answers':
        this.settle(m.id, m);
        return;
      case 'error': {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        p?.reject(errorFromReport(m.error));
        return;
      }
      case 'resolve':
        this.opts.resolve(m.model, m.version, this.opts.placement).then(
          (spec) => this.carrier.post({ type: 'resolved', id: m.id, spec }),
          (e: unknown) => this.carrier.post({ type: 'resolved', id: m.id, error: e instanceof Error ? e.message : String(e) }),
        );
        return;
      case 'log':
        this.opts.log?.(m.level, m.msg, m.fields);
        return;
    }
  }

  private settle(key: number, m: FromUnit): void {
    const p = this.pending.get(key);
    this.pending.delete(key);
    p?.resolve(m);
  }
}
