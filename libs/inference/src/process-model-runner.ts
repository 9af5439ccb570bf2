import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { validateInputs } from './input-validation';
import type { ModelConfig } from './model-config';
import type { InferenceRunner } from './model-runner';
import { resolveSignature } from './model-signature';
import { fromWire, ortPath, toWire, type FromSessionHost, type WireTensor } from './runner-wire';
import { sessionOptionsFor, type DevicePlacement } from './session-factory';
import type { InferTensor, ModelSignature } from './tensor';
import { UNIT_PROCESS_SOURCE } from './unit-process.source';

/**
 * CPU policy of a unit process. `idle`: Linux SCHED_IDLE (runs only on cycles nothing else
 * wants; `chrt` from util-linux); `inherit`: the parent's nice value.
 */
export type UnitCpuPolicy = 'idle' | 'inherit';

/** Writes one item (already validated) into `out` at `offset`; must be self-contained (it is shipped as source). */
export type ItemDecoder = (item: unknown, perItem: number, out: Float32Array, offset: number) => void;

/** The FP32 input a run of raw items fills. */
export interface ItemInput {
  name: string;
  /** The input's shape without its batch dimension. */
  itemShape: number[];
  perItem: number;
}

export interface UnitProcessOptions {
  threads?: number;
  policy?: UnitCpuPolicy;
  /** Gets the process at once, before the model is loaded, so a holder can stop or kill it while it loads. */
  onSpawn?: (p: ProcessControl) => void;
  /** Lets `runItems` send raw items that the process decodes. */
  itemDecoder?: ItemDecoder;
}

/** Signals to a unit process. */
export interface ProcessControl {
  suspend(): void;
  resume(): void;
  kill(): void;
}

const works = new Map<string, boolean>();
/** Whether a util-linux wrapper runs here with these arguments (checked once per command). */
function wrapperWorks(args: readonly string[]): boolean {
  const key = args.join(' ');
  let ok = works.get(key);
  if (ok === undefined) {
    ok = spawnSync(args[0]!, [...args.slice(1), 'true'], { stdio: 'ignore' }).status === 0;
    works.set(key, ok);
  }
  return ok;
}

/** `chrt` if this machine has one that can set SCHED_IDLE, else null (checked once). */
export function schedIdleLauncher(): string | null {
  return wrapperWorks(['chrt', '--idle', '0']) ? 'chrt' : null;
}

/**
 * The command prefix of a unit process: killed with its parent (`setpriv --pdeathsig KILL`: a
 * stopped process cannot notice its parent is gone, and would stay stopped forever), under
 * SCHED_IDLE when asked and possible.
 */
function unitWrappers(policy: UnitCpuPolicy): string[] {
  const out: string[] = [];
  if (wrapperWorks(['setpriv', '--pdeathsig', 'KILL'])) out.push('setpriv', '--pdeathsig', 'KILL');
  if (policy === 'idle' && schedIdleLauncher()) out.push('chrt', '--idle', '0');
  return out;
}

/**
 * A batch unit's runner: one onnxruntime session in a child process of its own, so the holder
 * can take it off the cores at once (`suspend`, SIGSTOP) when its device share is revoked and
 * `resume` it (SIGCONT) on the next share, where the run goes on where it stopped.
 */
export class ProcessModelRunner implements InferenceRunner, ProcessControl {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (o: WireTensor[]) => void; reject: (e: Error) => void }>();
  private dead: Error | undefined;
  private stopped = false;

  private constructor(
    private readonly child: ChildProcess,
    readonly signature: ModelSignature,
    readonly config: ModelConfig,
    readonly placement: DevicePlacement,
  ) {
    child.on('message', (m: FromSessionHost) => {
      if (m.type !== 'result' && m.type !== 'error') return;
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.type === 'result') p?.resolve(m.outputs);
      else p?.reject(new Error(`model run failed: ${m.message}`));
    });
    child.on('exit', (code, signal) => {
      this.dead = new Error(`unit process exited (${signal ?? code})`);
      for (const p of this.pending.values()) p.reject(this.dead);
      this.pending.clear();
    });
  }

  /** Starts a unit process and loads the model in it. */
  static async load(modelPath: string, config: ModelConfig, opts: UnitProcessOptions = {}): Promise<ProcessModelRunner> {
    const { threads = 1, policy = 'idle', onSpawn, itemDecoder } = opts;
    const placement: DevicePlacement = { kind: 'cpu', intraOpThreads: threads };
    const [cmd, ...args] = [...unitWrappers(policy), process.execPath, '-e', UNIT_PROCESS_SOURCE];
    const child = spawn(cmd!, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    onSpawn?.({ suspend: () => child.kill('SIGSTOP'), resume: () => child.kill('SIGCONT'), kill: () => child.kill('SIGKILL') });
    const first = await new Promise<FromSessionHost>((resolve, reject) => {
      child.once('message', resolve);
      child.once('error', reject);
      child.once('exit', (c, s) => reject(new Error(`unit process exited (${s ?? c}) while loading ${modelPath}`)));
      const sessionOptions = sessionOptionsFor(placement, { allowSpinning: false, memoryArena: config.device.memory_arena });
      child.send({ type: 'init', ortPath: ortPath(), modelPath, sessionOptions, decodeSource: itemDecoder?.toString() });
    }).finally(() => child.removeAllListeners());
    const fail = (why: string): never => {
      child.kill('SIGKILL');
      throw new Error(why);
    };
    if (first.type !== 'ready') return fail(`cannot load ${modelPath}: ${first.type === 'init-error' ? first.message : first.type}`);
    let signature: ModelSignature;
    try {
      signature = resolveSignature(first, config);
    } catch (e) {
      return fail((e as Error).message);
    }
    return new ProcessModelRunner(child, signature, config, placement);
  }

  /** The child's pid (tests read its scheduler state from /proc). */
  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.dead === undefined;
  }

  async run(inputs: readonly InferTensor[], outputNames?: readonly string[]): Promise<InferTensor[]> {
    validateInputs(this.signature, this.config.max_batch_size, inputs);
    return this.runUnchecked(inputs, outputNames);
  }

  /** Inputs are copied to the process whatever `_opts` says (IPC serializes them). */
  async runUnchecked(inputs: readonly InferTensor[], outputNames?: readonly string[], _opts?: { transfer?: boolean }): Promise<InferTensor[]> {
    return this.call({ feeds: toWire(inputs), outputs: outputNames ? [...outputNames] : this.signature.outputs.map((o) => o.name) });
  }

  /**
   * Runs raw items (as the batch stores them) that the process decodes into `input` with the
   * decoder it was started with: less to copy than FP32, and the decoding runs on the unit.
   */
  async runItems(items: readonly unknown[], input: ItemInput, outputNames?: readonly string[]): Promise<InferTensor[]> {
    return this.call({ items, input, outputs: outputNames ? [...outputNames] : this.signature.outputs.map((o) => o.name) });
  }

  private async call(msg: { feeds?: WireTensor[]; items?: readonly unknown[]; input?: ItemInput; outputs: string[] }): Promise<InferTensor[]> {
    if (this.dead) throw this.dead;
    const id = ++this.seq;
    const outputs = await new Promise<WireTensor[]>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ type: 'run', id, ...msg });
    });
    return fromWire(outputs);
  }

  /** Off the cores now: the kernel stops every thread of the process before kill() returns to us. */
  suspend(): void {
    if (this.dead || this.stopped) return;
    this.stopped = true;
    this.child.kill('SIGSTOP');
  }

  resume(): void {
    if (this.dead || !this.stopped) return;
    this.stopped = false;
    this.child.kill('SIGCONT');
  }

  /** Abandons whatever runs (reset-style preemption; batch items are idempotent). */
  kill(): void {
    if (this.dead) return;
    this.child.kill('SIGKILL');
  }

  /** Ends the process (it exits when its IPC channel closes; killed if it does not within 5 s). */
  async release(): Promise<void> {
    if (this.dead) return;
    this.resume();
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    this.child.disconnect();
    await exited;
    clearTimeout(timer);
  }
}
