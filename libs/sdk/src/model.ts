import type { OutputTensor, Tensor } from './tensor';

/** Where this replica (or batch unit) runs; sessions opened through the context are pinned to it. */
export type Placement = { kind: 'cpu'; threads: number } | { kind: 'gpu'; deviceId: number };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** An onnxruntime session opened from a file beside the model, pinned to the replica's placement. */
export interface Session {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Feeds by input name; returns every output (or only `outputs`) by name. */
  run(feeds: Readonly<Record<string, OutputTensor>>, outputs?: readonly string[]): Promise<Record<string, Tensor>>;
}

export interface InferOptions {
  version?: string;
  /** Only these outputs (default: all). */
  outputs?: readonly string[];
  /**
   * Give the inputs' memory to the callee instead of copying it, like a transfer list of
   * `postMessage`: cheaper for large tensors (a pass-through forwarding its input). The inputs'
   * typed arrays may be empty (detached) once the call started; do not use them afterwards.
   */
  transfer?: boolean;
}

/** What a node model sees once per replica (initialize) and on every batch (execute). */
export interface ModelContext {
  /** The model's name and version as served. */
  readonly name: string;
  readonly version: string;
  /** The version folder holding model.ts and the files beside it (absolute). */
  readonly dir: string;
  readonly placement: Placement;
  readonly log: Logger;
  /** Opens `file` (relative to `dir`) with onnxruntime on this replica's placement. Closed on finalize. */
  session(file: string): Promise<Session>;
  /**
   * Calls another repository model (Triton's BLS): online it goes through that model's own
   * batcher, replicas and device share; in a batch unit it runs on the unit. Rejects with
   * that model's error (an InputError when the callee answered 400).
   */
  infer(model: string, inputs: readonly Tensor[], opts?: InferOptions): Promise<Record<string, Tensor>>;
}

/** Per call of `execute`. */
export interface ExecuteInfo {
  /** Requests merged into this batch, and each one's items (the batch dimension). */
  readonly requests: readonly number[];
  /** Aborted when the batch's deadline passes; long work should check it. */
  readonly signal: AbortSignal;
  /**
   * True for the zero-filled warm-up batches a new replica runs before it serves (config.json
   * `warmup.batch_sizes`; BYTES inputs hold empty elements). Other models may still be loading
   * then, so skip `ctx.infer` calls in a warm-up batch.
   */
  readonly warmup: boolean;
}

/**
 * A node model (Triton's Python backend in TypeScript). `initialize` runs once per replica and
 * returns the replica's state; `execute` runs once per dynamic batch with the declared inputs
 * merged along the batch dimension (when max_batch_size > 0), and returns every declared output
 * by name, batch dimension first; `finalize` runs when the replica goes away.
 */
export interface ModelDefinition<S = void> {
  /** false: never run the warm-up batches on this model (zero-filled inputs mean nothing to it). */
  warmup?: boolean;
  initialize?(ctx: ModelContext): S | Promise<S>;
  execute(
    inputs: Readonly<Record<string, Tensor>>,
    state: S,
    ctx: ModelContext,
    info: ExecuteInfo,
  ): Record<string, OutputTensor> | Promise<Record<string, OutputTensor>>;
  finalize?(state: S, ctx: ModelContext): void | Promise<void>;
}

export const SDK_KIND = Symbol.for('tandem.sdk.kind');

export type Branded<T, K extends string> = T & { readonly [SDK_KIND]: K };

export function defineModel<S = void>(def: ModelDefinition<S>): Branded<ModelDefinition<S>, 'model'> {
  return brand(def, 'model');
}

/** Marks a definition so the loader can tell a model file from a task or reducer file. */
export function brand<T extends object, K extends string>(def: T, kind: K): Branded<T, K> {
  Object.defineProperty(def, SDK_KIND, { value: kind, enumerable: false });
  return def as Branded<T, K>;
}

/** The kind a default export was defined as ('model', 'task', 'reducer'), if any. */
export function kindOf(value: unknown): string | undefined {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return undefined;
  const k = (value as Record<symbol, unknown>)[SDK_KIND];
  return typeof k === 'string' ? k : undefined;
}
