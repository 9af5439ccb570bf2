import type { Logger } from './model';
import { brand, type Branded } from './model';

/** What a batch task sees while it runs one chunk. */
export interface TaskContext {
  readonly batchId: string;
  readonly chunk: number;
  /** 1 on the first try, 2 on the first retry, … */
  readonly attempt: number;
  /** Aborted when the batch is cancelled or paused while the chunk runs. */
  readonly signal: AbortSignal;
  readonly log: Logger;
}

/**
 * A batch task (Celery's `@app.task`): its name is its file name in BATCH_TASKS_DIR.
 * `validateItem` runs on every item at submission (return why it is invalid, or null);
 * `run` maps one chunk of items to one output per item, in order. Throwing fails the chunk,
 * which is retried and dead-lettered like any other. Items may be retried, so `run` must be
 * idempotent.
 */
export interface TaskDefinition<I = unknown, O = unknown> {
  validateItem?(item: unknown): string | null;
  run(items: readonly I[], ctx: TaskContext): O[] | Promise<O[]>;
}

export function defineTask<I = unknown, O = unknown>(def: TaskDefinition<I, O>): Branded<TaskDefinition<I, O>, 'task'> {
  return brand(def, 'task');
}

/**
 * An associative reducer for a chord's fan-in: each chunk turns its outputs into a JSON-safe
 * partial; partials are combined in any order (combine must be associative, empty() its
 * identity); finalize makes the batch's result.
 */
export interface ReducerDefinition<P = unknown, O = unknown, R = unknown> {
  empty(): P;
  partial(outputs: readonly O[]): P;
  combine(a: P, b: P): P;
  finalize(p: P): R;
}

export function defineReducer<P = unknown, O = unknown, R = unknown>(def: ReducerDefinition<P, O, R>): Branded<ReducerDefinition<P, O, R>, 'reducer'> {
  return brand(def, 'reducer');
}
