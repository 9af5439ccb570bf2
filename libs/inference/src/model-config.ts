import { z } from 'zod';
import { OIP_DATATYPES } from './datatypes';

const tensorSpec = z.object({
  name: z.string().min(1),
  datatype: z.enum(OIP_DATATYPES).optional(),
  /** Full shape including the batch dimension when max_batch_size > 0; -1 = variable. */
  shape: z.array(z.number().int().min(-1)).optional(),
});

/**
 * `<repo>/<model>/config.json`. Snake_case like Triton's config so operators recognise it.
 * Everything is optional: names, datatypes and shapes come from the ONNX session and the
 * config only narrows them (e.g. fixing ppocr_cls's dynamic H/W to 48×192).
 */
export const modelConfigSchema = z
  .object({
    /**
     * What runs a version: `onnxruntime` serves `<version>/model.onnx`; `node` runs the
     * TypeScript/JavaScript model in `<version>/model.ts` (or .js/.mjs) defined with @tandem/sdk,
     * whose inputs and outputs must then be declared here in full.
     */
    backend: z.enum(['onnxruntime', 'node']).default('onnxruntime'),
    /** 0 = the model has no batch dimension and requests are never merged. */
    max_batch_size: z.number().int().min(0).max(4096).default(0),
    dynamic_batching: z
      .object({
        /** How long the oldest queued request may wait for others to join its batch. */
        max_queue_delay_us: z.number().int().min(0).max(10_000_000).default(0),
        /** Queued requests (not items) beyond which new ones get 503. */
        max_queue_size: z.number().int().min(1).max(1_000_000).default(256),
        /**
         * The queue's length in time: a request whose estimated wait (queued rows × recent ms per
         * row ÷ replica slots) exceeds it gets 503 before its body is read; 0 = no time bound.
         * At least one full batch per replica slot is always admitted.
         */
        max_queue_time_ms: z.number().int().min(0).max(3_600_000).default(0),
        /**
         * Batch sizes the batcher aims for (Triton's option; the largest is used): merging stops
         * there, so a saturated queue runs batches of the model's most efficient size rather than
         * max_batch_size. A larger single request still runs.
         */
        preferred_batch_size: z.array(z.number().int().min(1).max(4096)).max(16).optional(),
      })
      .strict()
      .default({ max_queue_delay_us: 0, max_queue_size: 256, max_queue_time_ms: 0 }),
    /** Replicas requested from the capacity provider. */
    replicas: z.number().int().min(0).max(64).default(1),
    device: z
      .object({
        kind: z.enum(['cpu', 'gpu']).default('cpu'),
        /** CPU share of one replica (onnxruntime intra-op threads). */
        threads_per_replica: z.number().int().min(1).max(256).default(1),
        /** Batches one replica may run at once; beyond it work waits in the model's queue. */
        max_inflight_per_replica: z.number().int().min(1).max(64).default(1),
        /** Let onnxruntime's intra-op threads busy-wait between ops (faster ops, burns CPU the event loop may need). */
        allow_spinning: z.boolean().default(false),
        /** onnxruntime's CPU memory arena: fewer allocations per run, but it grows to the largest batch seen and never shrinks. */
        memory_arena: z.boolean().default(true),
        /**
         * Node models: the JavaScript heap of one replica's thread (V8 old generation, MiB). A model
         * that outgrows it kills only its own thread, which is restarted. Typed-array buffers and
         * onnxruntime's memory are outside it.
         */
        memory_limit_mib: z.number().int().min(16).max(1_048_576).default(1024),
        /**
         * GPU models: device memory one replica holds (MiB), what the ledger reserves on its device.
         * Absent: measured when the first replica loads (after its warm-up) and used from then on.
         */
        memory_mib: z.number().int().min(1).max(16_777_216).optional(),
        /**
         * GPU models: `cpu` serves the model on the CPU when no GPU can be allocated. Absent: the
         * load fails (state failed, with the reason) rather than running somewhere it was not meant to.
         */
        fallback: z.enum(['cpu']).optional(),
      })
      .strict()
      .refine((d) => d.kind === 'gpu' || (d.memory_mib === undefined && d.fallback === undefined), {
        message: 'memory_mib and fallback apply to device.kind "gpu" only',
      })
      .default({ kind: 'cpu', threads_per_replica: 1, max_inflight_per_replica: 1, allow_spinning: false, memory_arena: true, memory_limit_mib: 1024 }),
    /** Replica autoscaling (the gateway's autoscaler); absent = fixed `replicas`. */
    autoscaling: z
      .object({
        min_replicas: z.number().int().min(0).max(64).default(1),
        max_replicas: z.number().int().min(1).max(64),
        target_ongoing_requests: z.number().positive().max(10_000).default(2),
        upscale_delay_s: z.number().min(0).max(3600).default(1),
        downscale_delay_s: z.number().min(0).max(3600).default(10),
        window_s: z.number().min(0.1).max(600).default(2),
      })
      .strict()
      .refine((a) => a.min_replicas <= a.max_replicas, 'min_replicas must be <= max_replicas')
      .optional(),
    /**
     * Zero-filled runs every new replica makes before it serves (Triton's model_warmup): the
     * memory arena and kernel choices settle at load time, not under the first burst.
     */
    warmup: z
      .object({ batch_sizes: z.array(z.number().int().min(1).max(4096)).min(1).max(16) })
      .strict()
      .optional(),
    /** Server-side default deadline (ms) for this model; overrides the gateway default. */
    default_timeout_ms: z.number().int().min(1).optional(),
    inputs: z.array(tensorSpec).optional(),
    outputs: z.array(tensorSpec).optional(),
  })
  .strict()
  .refine((c) => c.max_batch_size === 0 || (c.warmup?.batch_sizes ?? []).every((b) => b <= c.max_batch_size), {
    message: 'warmup.batch_sizes must not exceed max_batch_size',
    path: ['warmup', 'batch_sizes'],
  });

export type ModelConfig = z.infer<typeof modelConfigSchema>;
export type ModelTensorConfig = z.infer<typeof tensorSpec>;

export function parseModelConfig(raw: unknown, where: string): ModelConfig {
  const r = modelConfigSchema.safeParse(raw);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  throw new Error(`invalid model config ${where}: ${problems}`);
}
