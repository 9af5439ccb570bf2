import { dirname } from 'node:path';
import { DomainException, ErrorCode, tandemModulePaths, type CompiledModule } from '@tandem/shared';
import type { Placement } from '@tandem/sdk';
import type { ReplicaRestartReason } from '../inference-observer';
import { validateInputs } from '../input-validation';
import type { ModelConfig } from '../model-config';
import type { InferenceRunner } from '../model-runner';
import { warmupBatchSizes, warmupInputs } from '../replica-warmup';
import type { RunOptions } from '../run-options';
import { sessionOptionsFor, type DevicePlacement } from '../session-factory';
import type { InferTensor, ModelSignature } from '../tensor';
import type { NodeThreadData } from './node-replica.thread';
import { NodeReplicaThread, type NodeThreadHooks, type ThreadDeath } from './node-thread.handle';

/** One replica of a node model: what it runs and where. */
export interface NodeReplicaSpec {
  name: string;
  version: string;
  /** The model file (model.ts / .js / .mjs); its folder is the model's `ctx.dir`. */
  file: string;
  compiled: CompiledModule;
  config: ModelConfig;
  signature: ModelSignature;
  placement: DevicePlacement;
}

export interface NodeRunnerHooks extends NodeThreadHooks {
  /** The replica's thread was replaced (metrics). */
  restarted(reason: ReplicaRestartReason): void;
}

/** After a batch's deadline, how long execute may take to notice `info.signal` before its thread is replaced. */
export const HANG_GRACE_MS = 1_000;
/** initialize plus the warm-up batches of one thread. */
const START_TIMEOUT_MS = 300_000;
const FINALIZE_TIMEOUT_MS = 5_000;
const MAX_BACKOFF_MS = 30_000;

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export function sdkPlacement(p: DevicePlacement): Placement {
  return p.kind === 'cuda' ? { kind: 'gpu', deviceId: p.deviceId } : { kind: 'cpu', threads: p.intraOpThreads };
}

/** Rejects with `onTimeout()` if `p` has not settled by `deadlineAt` (epoch ms). */
function bounded<T>(p: Promise<T>, deadlineAt: number | undefined, onTimeout: () => Error): Promise<T> {
  if (deadlineAt === undefined) return p;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), Math.max(0, deadlineAt - Date.now()));
  });
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}

/**
 * A node model's replica: the model in its own worker thread (NodeReplicaThread), kept alive.
 * A thread that crashes, exits or outgrows its heap fails its in-flight batches at once (500)
 * and is replaced; a batch still running past its deadline is answered 504 and, unless execute
 * returns within HANG_GRACE_MS, its thread is terminated and replaced. The replica keeps its
 * lease meanwhile: batches routed to it wait for the new thread (bounded by their deadline); if
 * the new thread cannot start either, they get 503 and the next try waits a growing back-off.
 */
export class NodeModelRunner implements InferenceRunner {
  readonly signature: ModelSignature;
  readonly config: ModelConfig;
  readonly placement: DevicePlacement;
  /** Threads replaced so far. */
  restarts = 0;
  private live?: NodeReplicaThread;
  private next?: Promise<NodeReplicaThread>;
  private failure?: { message: string; retryAt: number };
  private backoffMs = 0;
  private released = false;
  private readonly label: string;

  private constructor(
    private readonly spec: NodeReplicaSpec,
    private readonly hooks: NodeRunnerHooks,
  ) {
    this.signature = spec.signature;
    this.config = spec.config;
    this.placement = spec.placement;
    this.label = `model '${spec.name}' version ${spec.version}`;
  }

  /** Starts the first thread (initialize, then the warm-up batches); rejects with why it failed. */
  static async start(spec: NodeReplicaSpec, hooks: NodeRunnerHooks): Promise<NodeModelRunner> {
    const r = new NodeModelRunner(spec, hooks);
    r.adopt(await r.startThread());
    return r;
  }

  async run(inputs: readonly InferTensor[], outputNames?: readonly string[]): Promise<InferTensor[]> {
    validateInputs(this.signature, this.config.max_batch_size, inputs);
    return this.runUnchecked(inputs, outputNames);
  }

  async runUnchecked(inputs: readonly InferTensor[], outputNames?: readonly string[], opts: RunOptions = {}): Promise<InferTensor[]> {
    const t = await this.acquire(opts.deadlineAt);
    const rows = this.config.max_batch_size > 0 ? (inputs[0]?.shape[0] ?? 1) : 1;
    const run = t.execute(inputs, {
      outputs: outputNames,
      requests: opts.requests ?? [rows],
      deadlineAt: opts.deadlineAt,
      warmup: false,
      transfer: opts.transfer ?? false,
    });
    return bounded(run.result, opts.deadlineAt, () => {
      this.hung(t, run.id);
      return new DomainException(ErrorCode.DeadlineExceeded, `${this.label} did not answer before the deadline`);
    });
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.next?.catch(() => undefined);
    const t = this.live;
    this.live = undefined;
    await t?.finalize(FINALIZE_TIMEOUT_MS);
  }

  private threadData(): NodeThreadData {
    const { spec } = this;
    return {
      model: spec.compiled,
      modulePaths: tandemModulePaths(),
      name: spec.name,
      version: spec.version,
      dir: dirname(spec.file),
      placement: sdkPlacement(spec.placement),
      sessionOptions: sessionOptionsFor(spec.placement, { allowSpinning: spec.config.device.allow_spinning, memoryArena: spec.config.device.memory_arena }),
      inputs: spec.signature.inputs,
      outputs: spec.signature.outputs,
      maxBatchSize: spec.config.max_batch_size,
    };
  }

  /** A new thread, initialized and warmed up (config warmup.batch_sizes, unless the model opted out). */
  private async startThread(): Promise<NodeReplicaThread> {
    const deadlineAt = Date.now() + START_TIMEOUT_MS;
    const t = await NodeReplicaThread.spawn(this.threadData(), this.config.device.memory_limit_mib, this.hooks, START_TIMEOUT_MS);
    try {
      if (t.warmup) {
        for (const b of warmupBatchSizes(this.config)) {
          const inputs = warmupInputs(this.signature, this.config, b, { emptyBytes: true });
          const run = t.execute(inputs, { requests: [b], deadlineAt, warmup: true, transfer: true });
          await bounded(run.result, deadlineAt, () => new Error('it did not finish in time')).catch((e: unknown) => {
            throw new Error(`warm-up at batch size ${b} failed: ${messageOf(e)}`);
          });
        }
      }
    } catch (e) {
      await t.kill({ reason: 'released', message: 'failed its warm-up' });
      throw e;
    }
    return t;
  }

  private adopt(t: NodeReplicaThread): void {
    this.live = t;
    t.onDeath((d) => this.lost(t, d));
  }

  private async acquire(deadlineAt: number | undefined): Promise<NodeReplicaThread> {
    if (this.released) throw DomainException.unavailable(`${this.label}: its replica was released`);
    if (this.live) return this.live;
    if (!this.next) {
      if (this.failure && Date.now() < this.failure.retryAt) throw this.unavailable();
      this.recover();
    }
    return bounded(
      this.next!,
      deadlineAt,
      () => new DomainException(ErrorCode.DeadlineExceeded, `${this.label}: the deadline passed while its replica restarted`),
    );
  }

  private unavailable(): DomainException {
    const left = this.failure ? Math.max(1, Math.ceil((this.failure.retryAt - Date.now()) / 1000)) : 1;
    return DomainException.unavailable(`${this.label} has no working replica: ${this.failure?.message ?? 'restarting'}`, left);
  }

  private noteRestart(d: ThreadDeath): void {
    if (d.reason === 'released') return;
    this.restarts++;
    this.hooks.restarted(d.reason);
    this.hooks.log('error', `${this.label}: its replica ${d.message}; restarting it`, {
      event: 'replica_restart',
      reason: d.reason,
      ...(d.detail ? { detail: d.detail } : {}),
    });
  }

  /** The live thread died on its own. */
  private lost(t: NodeReplicaThread, d: ThreadDeath): void {
    if (this.live !== t) return;
    this.live = undefined;
    this.noteRestart(d);
    if (!this.released) this.recover();
  }

  /** Run `id` outlived its deadline: no new work for `t` until it answers within the grace, or is replaced. */
  private hung(t: NodeReplicaThread, id: number): void {
    if (this.live !== t || this.released) return;
    this.live = undefined;
    this.recover({ thread: t, id });
  }

  /** Brings a thread back: the hung one if it answers in time, else a new one. */
  private recover(hung?: { thread: NodeReplicaThread; id: number }): void {
    const p = (async (): Promise<NodeReplicaThread> => {
      if (hung) {
        const answered = await hung.thread.settles(hung.id, HANG_GRACE_MS);
        if (answered && !this.released) {
          this.live = hung.thread;
          return hung.thread;
        }
        if (answered) {
          await hung.thread.finalize(FINALIZE_TIMEOUT_MS);
        } else {
          const d: ThreadDeath = hung.thread.death ?? { reason: 'hung', message: `hung: execute ran on ${HANG_GRACE_MS} ms past the deadline` };
          this.noteRestart(d);
          await hung.thread.kill(d);
        }
      }
      if (this.released) throw DomainException.unavailable(`${this.label}: its replica was released`);
      try {
        const t = await this.startThread();
        if (this.released) {
          await t.finalize(FINALIZE_TIMEOUT_MS);
          throw DomainException.unavailable(`${this.label}: its replica was released`);
        }
        this.adopt(t);
        this.failure = undefined;
        this.backoffMs = 0;
        return t;
      } catch (e) {
        if (this.released) throw e;
        this.backoffMs = Math.min(MAX_BACKOFF_MS, Math.max(1_000, this.backoffMs * 2));
        this.failure = { message: messageOf(e), retryAt: Date.now() + this.backoffMs };
        this.hooks.log(
          'error',
          `${this.label}: its replica could not be restarted: ${messageOf(e)}; the next request after ${this.backoffMs / 1000} s tries again`,
          { event: 'replica_restart_failed' },
        );
        throw this.unavailable();
      }
    })();
    this.next = p;
    void p
      .catch(() => undefined)
      .finally(() => {
        if (this.next === p) this.next = undefined;
      });
  }
}
