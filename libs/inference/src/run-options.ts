/**
 * What the batcher tells a runner about one batch (the options of
 * InferenceRunner.runUnchecked). Runners use what they can: onnxruntime replicas only `transfer`;
 * node-model replicas all of it.
 */
export interface RunOptions {
  /** The input buffers are the caller's to give away (moved to a worker, not copied). */
  transfer?: boolean;
  /** Epoch ms after which no request of the batch waits for it any more (the latest of their deadlines). */
  deadlineAt?: number;
  /** Rows each merged request contributed, in order (a node model's ExecuteInfo.requests). */
  requests?: readonly number[];
}
