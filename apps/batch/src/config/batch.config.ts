import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';
import { env, infraSchema, parseEnv, toInfraConfig, withSecretFiles, type EnvSource, type InfraConfig } from '@tandem/shared';
import { authEnvSchema, toAuthOptions, type AuthOptions } from '@tandem/auth';
import { schedulerEnvSchema, toSchedulerOptions, type SchedulerOptions } from '@tandem/scheduler';
import { gpuEnvSchema, toGpuProcessSettings, type GpuProcessSettings } from '@tandem/inference';

const batchSchema = z.object({
  ...infraSchema,
  ...authEnvSchema,
  /** Device ledger: SCHEDULER_NODE_NAME, SCHEDULER_DECLARED_DEVICES (JSON), lease TTL, heartbeat, grace… */
  ...schedulerEnvSchema,
  /** TANDEM_SIMULATED_GPU*, CUDA_VISIBLE_DEVICES (libs/inference/src/gpu/gpu-env.ts). */
  ...gpuEnvSchema,
  BATCH_PORT: env.port(8100),
  MODEL_REPOSITORY: z.string().min(1).default('models'),
  /** User tasks and reducers (tasks/<name>.ts, tasks/<name>.reducer.ts); unset = `tasks` in the working directory, optional. */
  BATCH_TASKS_DIR: z.string().min(1).optional(),
  /** JSON bodies are buffered and parsed whole, so this stays modest; big uploads use NDJSON (streamed). */
  BATCH_BODY_LIMIT_MB: env.num(64, 0.001, 4096),
  BATCH_LOG_REQUESTS: env.bool(false),
  // Batch chord execution (issue 6).
  BATCH_ROLE: z.enum(['api', 'worker', 'all']).default('all'),
  BATCH_CONCURRENCY: env.int(4, 1, 256),
  /** Items per batch: an NDJSON chord streams into the blob store (offsets in Postgres), so this is not memory-bound. */
  BATCH_MAX_ITEMS: env.int(100_000_000, 1, 2_000_000_000),
  BATCH_MAX_CHUNK_SIZE: env.int(100_000, 1, 1_000_000),
  BATCH_DEFAULT_CHUNK_SIZE: env.int(1_000, 1, 1_000_000),
  BATCH_MAX_ATTEMPTS: env.int(3, 1, 100),
  BATCH_BACKOFF_MS: env.int(500, 1, 3_600_000),
  BATCH_LOCK_MS: env.int(30_000, 1_000, 3_600_000),
  BATCH_STALLED_INTERVAL_MS: env.int(15_000, 500, 3_600_000),
  BATCH_RECONCILE_MS: env.int(5_000, 200, 3_600_000),
  BATCH_ENABLE_TEST_TASKS: env.bool(false),
  /** Most CPU cores (or GPUs) a worker runs `infer` on at once; 0 = all cores of the machine. */
  BATCH_INFER_THREADS: env.int(0, 0, 1024),
  /** `ledger`: infer units are batch allocations in the device ledger (co-location); `fixed`: no ledger. */
  BATCH_DEVICE_SHARES: z.enum(['ledger', 'fixed']).default('ledger'),
  BATCH_DEVICE_KIND: z.enum(['cpu', 'gpu']).default('cpu'),
  /** Device memory a GPU unit holds for a model whose config.json declares no `device.memory_mib` (MiB). */
  BATCH_GPU_MEMORY_MIB: env.int(0, 0, 16 * 1024 * 1024),
  /** After borrowed share is revoked, no borrowing for this long (ms). */
  BATCH_BORROW_HOLD_DOWN_MS: env.int(3_000, 0, 3_600_000),
  /** Scheduling priority (nice) of worker processes, so online work wins CPU contention; 0 = unchanged. */
  BATCH_CPU_NICE: env.int(10, 0, 19),
  /** CPU units' processes: `idle` = SCHED_IDLE (only cycles online leaves unused), `inherit` = BATCH_CPU_NICE. */
  BATCH_UNIT_CPU_POLICY: z.enum(['idle', 'inherit']).default('idle'),
  /** Device units are given back after this long without infer work (ms). */
  BATCH_UNIT_IDLE_MS: env.int(5_000, 10, 3_600_000),
  BATCH_INFER_BATCH: env.int(32, 1, 4096),
  BATCH_UPLOAD_LIMIT_MB: env.num(4096, 0.001, 1_048_576),
  /** Longest NDJSON line (one item); the only part of an upload ever held whole. */
  BATCH_UPLOAD_LINE_LIMIT_KB: env.num(1024, 0.001, 1_048_576),
  /** Per-key quotas at submission (admin keys are exempt); 0 = unlimited. */
  BATCH_QUOTA_CONCURRENT_BATCHES: env.int(16, 0, 1_000_000),
  BATCH_QUOTA_QUEUED_ITEMS: env.int(10_000_000, 0, 1_000_000_000_000),
  BATCH_QUOTA_STORED_MB: env.num(10_240, 0, 1_073_741_824),
  // Files API (issue 15): where file bytes live, and what one upload may be.
  /** `postgres`: large objects, reachable from every node; `disk`: BATCH_BLOB_DIR, one node only. */
  BATCH_BLOB_STORE: z.enum(['postgres', 'disk']).default('postgres'),
  /** The disk store's directory (default `.data/blobs`); set it on a postgres node too to keep reading older disk files. */
  BATCH_BLOB_DIR: z.string().min(1).optional(),
  BATCH_FILE_LIMIT_MB: env.num(200, 0.001, 1_048_576),
  BATCH_FILE_LINE_LIMIT: env.int(50_000, 1, 100_000_000),
  BATCH_RETENTION_DAYS: env.num(30, 0.001, 36_500),
  // Batches over files (issue 15, part 2): a chunk is a byte range of whole lines, closed at either limit.
  BATCH_FILE_CHUNK_LINES: env.int(500, 1, 100_000),
  BATCH_FILE_CHUNK_MB: env.num(4, 0.001, 1024),
});

export interface BatchConfig extends InfraConfig {
  auth: AuthOptions;
  scheduler: SchedulerOptions;
  /** Simulated CUDA, CUDA_VISIBLE_DEVICES: set for the whole process at boot (GPU units are its threads). */
  gpu: GpuProcessSettings;
  port: number;
  modelRepository: string;
  tasks: UserTasksConfig;
  bodyLimitBytes: number;
  logRequests: boolean;
  jobs: BatchJobsConfig;
  files: BatchFilesConfig;
}

/** The Files API: blob store, per-upload limits, retention. */
export interface BatchFilesConfig {
  blobStore: 'postgres' | 'disk';
  /** Absolute path of the disk store; null when this process has none (postgres, BATCH_BLOB_DIR unset). */
  blobDir: string | null;
  /** Largest file (413 beyond, as bytes arrive). */
  limitBytes: number;
  /** Most JSON lines in a purpose=batch file (413 beyond). */
  maxLines: number;
  /** Longest line (BATCH_UPLOAD_LINE_LIMIT_KB, shared with NDJSON submissions). */
  lineLimitBytes: number;
  /** Files are deleted this long after creation. */
  retentionMs: number;
  /** File batches: requests per chunk, and bytes after which a chunk is closed at the next line end. */
  chunkLines: number;
  chunkBytes: number;
}

export interface BatchJobsConfig {
  /** `all` runs API and workers in one process; `worker` processes scale out on the same stores. */
  role: 'api' | 'worker' | 'all';
  concurrency: number;
  maxItems: number;
  maxChunkSize: number;
  defaultChunkSize: number;
  /** Default attempts per chunk (a submission may ask for fewer or more, up to 100). */
  maxAttempts: number;
  /** Base delay of the exponential backoff (with jitter) between chunk attempts. */
  backoffMs: number;
  /** Worker lock; a worker silent this long is stalled and its chunk is picked up again. */
  lockMs: number;
  stalledIntervalMs: number;
  /** How often Postgres is compared with the queue store to re-enqueue lost chunks. */
  reconcileMs: number;
  /** Registers the failure-injection task used by the acceptance tests; off in production. */
  enableTestTasks: boolean;
  /** Most units (CPU cores, or GPUs) a worker runs `infer` on at once. */
  inferThreads: number;
  /** Where infer units come from: the device ledger (co-location with online) or a fixed count. */
  deviceShares: 'ledger' | 'fixed';
  deviceKind: 'cpu' | 'gpu';
  gpuMemoryMiB: number;
  borrowHoldDownMs: number;
  unitIdleMs: number;
  /** nice value applied to worker processes at start (0 = none). */
  cpuNice: number;
  unitCpuPolicy: 'idle' | 'inherit';
  /** Items per model run inside an `infer` chunk (capped at the model's max_batch_size). */
  inferBatch: number;
  /** Largest streamed NDJSON upload (it is never buffered whole, so it may exceed the JSON body limit). */
  uploadLimitBytes: number;
  /** Longest NDJSON line in bytes. */
  uploadLineLimitBytes: number;
  quotas: BatchQuotas;
}

/** Where user tasks and reducers are read from at start (apps/batch/src/user-tasks). */
export interface UserTasksConfig {
  /** Absolute path. */
  dir: string;
  /** BATCH_TASKS_DIR was set: a missing folder is a boot error, not "no user tasks". */
  required: boolean;
}

/** Per-key limits checked at submission; 0 = unlimited. */
export interface BatchQuotas {
  /** Batches queued, running or paused at once (429 beyond). */
  concurrentBatches: number;
  /** Items not yet settled over all open batches, the new one included (429 beyond). */
  queuedItems: number;
  /** Bytes of items and outputs stored over all of the key's batches (413 beyond). */
  storedBytes: number;
}

export const BATCH_CONFIG = Symbol('BATCH_CONFIG');

/** Validates the batch app's environment once at boot; throws ConfigValidationError naming each bad variable. */
export function loadBatchConfig(source: EnvSource): BatchConfig {
  const e = parseEnv(batchSchema, withSecretFiles(source));
  return {
    ...toInfraConfig(e),
    auth: toAuthOptions(e),
    scheduler: toSchedulerOptions(e),
    gpu: toGpuProcessSettings(e),
    port: e.BATCH_PORT,
    modelRepository: e.MODEL_REPOSITORY,
    // Resolved once, so a process started from another folder still names the same directory.
    tasks: { dir: resolve(e.BATCH_TASKS_DIR ?? 'tasks'), required: e.BATCH_TASKS_DIR !== undefined },
    bodyLimitBytes: Math.round(e.BATCH_BODY_LIMIT_MB * 1024 * 1024),
    logRequests: e.BATCH_LOG_REQUESTS,
    jobs: {
      role: e.BATCH_ROLE,
      concurrency: e.BATCH_CONCURRENCY,
      maxItems: e.BATCH_MAX_ITEMS,
      maxChunkSize: e.BATCH_MAX_CHUNK_SIZE,
      defaultChunkSize: e.BATCH_DEFAULT_CHUNK_SIZE,
      maxAttempts: e.BATCH_MAX_ATTEMPTS,
      backoffMs: e.BATCH_BACKOFF_MS,
      lockMs: e.BATCH_LOCK_MS,
      stalledIntervalMs: e.BATCH_STALLED_INTERVAL_MS,
      reconcileMs: e.BATCH_RECONCILE_MS,
      enableTestTasks: e.BATCH_ENABLE_TEST_TASKS,
      inferThreads: e.BATCH_INFER_THREADS === 0 ? availableParallelism() : e.BATCH_INFER_THREADS,
      deviceShares: e.BATCH_DEVICE_SHARES,
      deviceKind: e.BATCH_DEVICE_KIND,
      gpuMemoryMiB: e.BATCH_GPU_MEMORY_MIB,
      borrowHoldDownMs: e.BATCH_BORROW_HOLD_DOWN_MS,
      unitIdleMs: e.BATCH_UNIT_IDLE_MS,
      cpuNice: e.BATCH_CPU_NICE,
      unitCpuPolicy: e.BATCH_UNIT_CPU_POLICY,
      inferBatch: e.BATCH_INFER_BATCH,
      uploadLimitBytes: Math.round(e.BATCH_UPLOAD_LIMIT_MB * 1024 * 1024),
      uploadLineLimitBytes: Math.round(e.BATCH_UPLOAD_LINE_LIMIT_KB * 1024),
      quotas: {
        concurrentBatches: e.BATCH_QUOTA_CONCURRENT_BATCHES,
        queuedItems: e.BATCH_QUOTA_QUEUED_ITEMS,
        storedBytes: Math.round(e.BATCH_QUOTA_STORED_MB * 1024 * 1024),
      },
    },
    files: {
      blobStore: e.BATCH_BLOB_STORE,
      blobDir: e.BATCH_BLOB_DIR !== undefined || e.BATCH_BLOB_STORE === 'disk' ? resolve(e.BATCH_BLOB_DIR ?? '.data/blobs') : null,
      limitBytes: Math.round(e.BATCH_FILE_LIMIT_MB * 1024 * 1024),
      maxLines: e.BATCH_FILE_LINE_LIMIT,
      lineLimitBytes: Math.round(e.BATCH_UPLOAD_LINE_LIMIT_KB * 1024),
      retentionMs: Math.round(e.BATCH_RETENTION_DAYS * 86_400_000),
      chunkLines: e.BATCH_FILE_CHUNK_LINES,
      chunkBytes: Math.round(e.BATCH_FILE_CHUNK_MB * 1024 * 1024),
    },
  };
}
