import type { Logger } from '@tandem/sdk';
import type { UnitUsage } from '@tandem/scheduler';
import type { ChunkLines } from '../file-batches/file-scan';

/** What a task sees while it runs one chunk (user tasks get the SDK's subset of it). */
export interface TaskContext {
  batchId: string;
  chunk: number;
  /** 1 on the first try, 2 on the first retry, … */
  attempt: number;
  /** Aborted when the batch is cancelled or paused while the chunk runs. */
  signal: AbortSignal;
  model: string | null;
  /** The batch's priority (0..100): higher takes device units first. */
  priority: number;
  /** The batch may run on borrowed (idle online) share. */
  mayBorrow: boolean;
  /** The worker's logger, bound to this batch, chunk and attempt. */
  log: Logger;
  /** Where unit time is charged (device-seconds, owned vs borrowed); tasks that take units add to it. */
  usage?: UnitUsage;
}

/** A registered task (built in, or a user's from BATCH_TASKS_DIR): validates each item at submission, maps a chunk of items to outputs. */
export interface BatchTask {
  readonly name: string;
  /** `infer` needs a model from the model repository. */
  readonly needsModel: boolean;
  /** Returns why an item is not valid input, or null. Runs on every item before anything is enqueued. */
  validateItem(item: unknown, model: string | null): string | null;
  /** Outputs in item order, one per item. Throwing fails the whole chunk (it is retried). */
  run(items: readonly unknown[], ctx: TaskContext): unknown[] | Promise<unknown[]>;
  /**
   * The same for a chunk of an NDJSON upload given as its raw lines (one item each, checked at
   * submission), for a task that parses them where it runs them (`infer`: in its device units, so
   * the worker's thread never decodes a batch's payload). Tasks without it get parsed items.
   */
  runLines?(chunk: ChunkLines, ctx: TaskContext): Promise<unknown[]>;
}
