/**
 * The node-model host: runs one replica (or batch unit) of a user's model, whatever carries its
 * messages. The gateway runs it in a worker thread (node-replica.thread.ts); a batch unit may run
 * it in a child process. It evaluates the compiled module, builds the ModelContext, calls
 * initialize once, execute per batch (outputs checked against config.json) and finalize at the
 * end. The transport injects where `ctx.log` and `ctx.infer` go.
 *
 *   const host = await startModelHost({
 *     module,            // CompiledModule: compileUserModule('<version>/model.ts'), done by the parent
 *     modulePaths,       // node_modules folders searched after the model's own (tandemModulePaths())
 *     name, version,     // as served
 *     dir,               // the version folder (absolute); ctx.session(file) resolves against it
 *     placement,         // SDK Placement of this replica
 *     sessionOptions,    // onnxruntime options for ctx.session: sessionOptionsFor(<DevicePlacement>, …)
 *     inputs, outputs,   // the declared signature (config.json; batch dimension -1)
 *     maxBatchSize,      // > 0: dim 0 of every input and output is the batch dimension
 *     log(level, msg, fields?),                    // ctx.log; fields are JSON-safe copies
 *     infer(model, inputs, { version?, outputs?, timeoutMs? }),
 *                        // ctx.infer (Triton's BLS): the parent runs the call; timeoutMs is what is
 *                        // left of the calling batch's deadline; reject with an SDK InputError when
 *                        // the callee said 400 (errorFromReport does it)
 *   });                  // rejects with HostInitError (the reason a load fails) when the module does
 *                        // not evaluate, its default export is not defineModel(...), or initialize throws
 *   host.warmup          // false: the model opted out of warm-up batches
 *   await host.execute(inputs, { requests, deadlineAt?, warmup?, outputs? })
 *                        // → Tensor[]: the declared outputs (or `outputs`), in that order. Rejects with
 *                        // the model's InputError (→ 400) or any other Error (→ 500, a bad output too).
 *                        // deadlineAt (epoch ms) aborts info.signal and bounds ctx.infer.
 *   await host.finalize() // finalize(state), then every ctx.session is released; idempotent
 *
 * errorReport / errorFromReport carry an error across a message boundary (InputError stays one).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { resolve } from 'node:path';
import {
  InputError,
  isInputError,
  kindOf,
  type ExecuteInfo,
  type InferOptions,
  type Logger,
  type ModelContext,
  type ModelDefinition,
  type Placement,
  type Session,
  type Tensor,
} from '@tandem/sdk';
import type { InferenceSession } from 'onnxruntime-node';
// The file, not @tandem/shared's index: this module is bundled into replica threads, which must
// not load Nest, pino and the rest of the shared library.
import { evaluateUserModule, type CompiledModule } from '../../../shared/src/user-code/user-module';
import type { TensorSpec } from '../tensor';
import { collectOutputs } from './node-outputs.validation';
import { openOrtSession, type OwnedSession } from './node-session.adapter';
import type { LogLevel, WireError } from './node-replica.wire';

export interface ModelHostOptions {
  module: CompiledModule;
  modulePaths?: readonly string[];
  name: string;
  version: string;
  dir: string;
  placement: Placement;
  sessionOptions: InferenceSession.SessionOptions;
  inputs: readonly TensorSpec[];
  outputs: readonly TensorSpec[];
  maxBatchSize: number;
  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void;
  infer(model: string, inputs: readonly Tensor[], opts: InferOptions & { timeoutMs?: number }): Promise<Record<string, Tensor>>;
}

export interface HostExecuteOptions {
  /** Rows each merged request contributed (ExecuteInfo.requests). */
  requests: readonly number[];
  /** Epoch ms; info.signal aborts then, and ctx.infer gets what is left. */
  deadlineAt?: number;
  warmup?: boolean;
  /** Only these outputs, in this order (default: every declared output). */
  outputs?: readonly string[];
}

export interface ModelHost {
  readonly warmup: boolean;
  execute(inputs: readonly Tensor[], opts: HostExecuteOptions): Promise<Tensor[]>;
  finalize(): Promise<void>;
}

/** Why a model could not start: its message is the load failure's reason. */
export class HostInitError extends Error {
  override name = 'HostInitError';
}

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export function errorReport(e: unknown): WireError {
  // A failed start reports where the model failed (its error's stack), not where the host noticed.
  const at = e instanceof HostInitError && e.cause instanceof Error ? e.cause : e;
  return { input: isInputError(e), message: messageOf(e), ...(at instanceof Error && at.stack ? { stack: at.stack } : {}) };
}

export function errorFromReport(w: WireError): Error {
  const e = w.input ? new InputError(w.message) : new Error(w.message);
  if (w.stack) e.stack = w.stack;
  return e;
}

/** Log fields as plain JSON (they cross a message boundary); errors keep their message and stack. */
function plainFields(fields: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (fields === undefined) return undefined;
  try {
    return JSON.parse(
      JSON.stringify(fields, (_k, v: unknown) => (v instanceof Error ? { message: v.message, stack: v.stack } : typeof v === 'bigint' ? v.toString() : v)),
    ) as Record<string, unknown>;
  } catch (e) {
    return { fields: `[not serializable: ${messageOf(e)}]` };
  }
}

function describeExport(v: unknown): string {
  // evaluateUserModule hands back the whole exports object of an ES module without a default.
  if (v === undefined || (typeof v === 'object' && v !== null && (v as { __esModule?: unknown }).__esModule === true)) return 'there is no default export';
  const kind = kindOf(v);
  if (kind) return `it is a ${kind} definition`;
  return `it is ${v === null ? 'null' : Array.isArray(v) ? 'an array' : `a plain ${typeof v}`}`;
}

export async function startModelHost(opts: ModelHostOptions): Promise<ModelHost> {
  const file = opts.module.filename;
  let def: unknown;
  try {
    def = evaluateUserModule(opts.module, opts.modulePaths ?? []);
  } catch (e) {
    throw new HostInitError(`${file} threw while loading: ${messageOf(e)}`, { cause: e });
  }
  if (kindOf(def) !== 'model' || typeof (def as ModelDefinition<unknown>).execute !== 'function') {
    throw new HostInitError(`${file}: the default export must be defineModel({ execute, ... }) from @tandem/sdk; ${describeExport(def)}`);
  }
  const model = def as ModelDefinition<unknown>;
  const deadlines = new AsyncLocalStorage<{ deadlineAt?: number }>();
  const sessions = new Set<OwnedSession>();
  let finalized = false;

  const emit = (level: LogLevel) => (msg: string, fields?: Record<string, unknown>) => opts.log(level, String(msg), plainFields(fields));
  const log: Logger = { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };

  const ctx: ModelContext = Object.freeze({
    name: opts.name,
    version: opts.version,
    dir: opts.dir,
    placement: Object.freeze({ ...opts.placement }),
    log,
    async session(file: string): Promise<Session> {
      if (typeof file !== 'string' || file === '') throw new TypeError('ctx.session(file): file is a path relative to the version folder');
      const s = await openOrtSession(resolve(opts.dir, file), opts.sessionOptions);
      if (finalized) {
        await s.release();
        throw new Error('ctx.session: the model was finalized');
      }
      sessions.add(s);
      return { inputNames: s.inputNames, outputNames: s.outputNames, run: s.run.bind(s) };
    },
    async infer(name: string, inputs: readonly Tensor[], o: InferOptions = {}): Promise<Record<string, Tensor>> {
      if (typeof name !== 'string' || !Array.isArray(inputs))
        throw new TypeError('ctx.infer(model, inputs, opts?): model is a name, inputs an array of tensors');
      const at = deadlines.getStore()?.deadlineAt;
      if (at === undefined) return opts.infer(name, inputs, o);
      const left = at - Date.now();
      if (left <= 0) throw new Error(`ctx.infer('${name}'): the calling batch's deadline has passed`);
      return opts.infer(name, inputs, { ...o, timeoutMs: Math.ceil(left) });
    },
  });

  const closeSessions = async (): Promise<void> => {
    await Promise.allSettled([...sessions].map((s) => s.release()));
    sessions.clear();
  };

  let state: unknown;
  try {
    state = await model.initialize?.(ctx);
  } catch (e) {
    finalized = true;
    await closeSessions();
    throw new HostInitError(`initialize failed: ${messageOf(e)}`, { cause: e });
  }

  return {
    warmup: model.warmup !== false,

    async execute(inputs: readonly Tensor[], o: HostExecuteOptions): Promise<Tensor[]> {
      if (finalized) throw new Error('the model was finalized');
      const byName: Record<string, Tensor> = {};
      for (const t of inputs) byName[t.name] = t;
      const abort = new AbortController();
      const timer =
        o.deadlineAt === undefined ? undefined : setTimeout(() => abort.abort(new Error('deadline exceeded')), Math.max(0, o.deadlineAt - Date.now()));
      const info: ExecuteInfo = { requests: [...o.requests], signal: abort.signal, warmup: o.warmup ?? false };
      try {
        const returned = await deadlines.run({ deadlineAt: o.deadlineAt }, () => model.execute(byName, state, ctx, info));
        const rows = opts.maxBatchSize > 0 ? (inputs[0]?.shape[0] ?? o.requests.reduce((a, b) => a + b, 0)) : undefined;
        return collectOutputs(returned, opts.outputs, rows, o.outputs);
      } finally {
        clearTimeout(timer);
      }
    },

    async finalize(): Promise<void> {
      if (finalized) return;
      finalized = true;
      try {
        await model.finalize?.(state, ctx);
      } catch (e) {
        log.error(`finalize failed: ${messageOf(e)}`, { err: e });
      } finally {
        await closeSessions();
      }
    },
  };
}
