import type { BatchTask, TaskContext } from './batch-task';

export const INFER_TASK = Symbol('INFER_TASK');

/**
 * The `infer` task: runs a model from the model repository over each chunk in device batches.
 * It is implemented on top of @tandem/inference's public API once that exists; until then this
 * provider knows no models, so submissions are rejected with a 4xx before anything is enqueued.
 */
export interface InferTaskProvider extends BatchTask {
  /** Why `model` cannot be used (unknown, not loaded), or null when it can. */
  checkModel(model: string | null): Promise<string | null>;
}

export class UnavailableInferTask implements InferTaskProvider {
  readonly name = 'infer';
  readonly needsModel = true;

  validateItem(item: unknown): string | null {
    return Array.isArray(item) ? null : 'must be an array of numbers (one model input)';
  }

  async checkModel(model: string | null): Promise<string | null> {
    if (!model) return 'task infer needs a "model"';
    return `unknown model "${model}" (model execution from @tandem/inference is not available in this build)`;
  }

  run(_items: readonly unknown[], ctx: TaskContext): unknown[] {
    throw new Error(`infer is not available (batch ${ctx.batchId})`);
  }
}
