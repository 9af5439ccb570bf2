import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { env } from '@tandem/shared';

/** A device declared in config: simulates a GPU (or a CPU of a given size) on any machine. */
export const declaredDeviceSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('gpu'),
    /** Local id; default `gpu<index>`. */
    id: z
      .string()
      .regex(/^[a-zA-Z0-9_.:-]{1,64}$/)
      .optional(),
    index: z.number().int().min(0).max(1023),
    uuid: z.string().min(1).max(128).optional(),
    name: z.string().min(1).max(200).default('Declared GPU'),
    memoryMiB: z
      .number()
      .int()
      .min(0)
      .max(16 * 1024 * 1024),
    mig: z.enum(['Enabled', 'Disabled']).optional(),
  }),
  z.object({
    kind: z.literal('cpu'),
    id: z
      .string()
      .regex(/^[a-zA-Z0-9_.:-]{1,64}$/)
      .optional(),
    cores: z.number().int().min(1).max(4096),
    memoryMiB: z
      .number()
      .int()
      .min(0)
      .max(64 * 1024 * 1024),
    name: z.string().min(1).max(200).default('Declared CPU'),
  }),
]);
export type DeclaredDevice = z.infer<typeof declaredDeviceSchema>;
export const declaredDevicesSchema = z.array(declaredDeviceSchema).max(256);

export type Placement = 'pack' | 'spread';

export interface SchedulerOptions {
  /** This process's node name; devices are registered under it. */
  nodeName: string;
  /** Register this node and heartbeat (false: a process that only allocates, e.g. an admin tool). */
  agentEnabled: boolean;
  /** Probe GPUs with nvidia-smi at registration. */
  discoverGpus: boolean;
  /** Expose this machine's CPU as a device (capacity = its cores). */
  discoverCpu: boolean;
  declaredDevices: DeclaredDevice[];
  leaseTtlMs: number;
  heartbeatMs: number;
  /** A node whose heartbeat is older than this is marked lost and its leases reclaimed. */
  nodeTimeoutMs: number;
  /** How long a revoked batch holder may keep a borrowed share before it is force-reclaimed. */
  preemptGraceMs: number;
  reaperMs: number;
  placement: Placement;
  /** Partition given to newly registered devices, in fractions of a device. */
  defaultPartition: { online: number; batch: number; batchMayBorrow: boolean };
  /** Directory this node's processes share for the online-demand hint (events/local-demand-hint.ts); null: NOTIFY only. */
  hintDir: string | null;
}

export const SCHEDULER_OPTIONS = Symbol('SCHEDULER_OPTIONS');

export function defaultSchedulerOptions(overrides: Partial<SchedulerOptions> = {}): SchedulerOptions {
  return {
    nodeName: hostname(),
    agentEnabled: true,
    discoverGpus: true,
    discoverCpu: true,
    declaredDevices: [],
    leaseTtlMs: 15_000,
    heartbeatMs: 3_000,
    nodeTimeoutMs: 15_000,
    preemptGraceMs: 2_000,
    reaperMs: 1_000,
    placement: 'pack',
    defaultPartition: { online: 0.5, batch: 0.5, batchMayBorrow: true },
    hintDir: join(tmpdir(), 'tandem-hints'),
    ...overrides,
  };
}

const jsonDevices = z
  .string()
  .transform((s, ctx) => {
    try {
      return JSON.parse(s) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be a JSON array of devices' });
      return z.NEVER;
    }
  })
  .pipe(declaredDevicesSchema);

/** Environment variables shared by every app that embeds the scheduler; spread into an app's schema. */
export const schedulerEnvSchema = {
  SCHEDULER_NODE_NAME: z
    .string()
    .regex(/^[a-zA-Z0-9_.-]{1,64}$/, 'letters, digits, _ . - only')
    .optional(),
  SCHEDULER_AGENT: env.bool(true),
  SCHEDULER_DISCOVER_GPUS: env.bool(true),
  SCHEDULER_DISCOVER_CPU: env.bool(true),
  /** JSON array, e.g. `[{"kind":"gpu","index":0,"name":"NVIDIA H100 80GB HBM3","memoryMiB":81559}]`. */
  SCHEDULER_DECLARED_DEVICES: jsonDevices.optional(),
  SCHEDULER_LEASE_TTL_MS: env.int(15_000, 50, 3_600_000),
  SCHEDULER_HEARTBEAT_MS: env.int(3_000, 10, 600_000),
  SCHEDULER_NODE_TIMEOUT_MS: env.int(15_000, 50, 3_600_000),
  SCHEDULER_PREEMPT_GRACE_MS: env.int(2_000, 0, 600_000),
  SCHEDULER_REAPER_MS: env.int(1_000, 10, 600_000),
  SCHEDULER_PLACEMENT: z.enum(['pack', 'spread']).default('pack'),
  SCHEDULER_DEFAULT_ONLINE_SHARE: env.num(1, 0, 1),
  SCHEDULER_DEFAULT_BATCH_SHARE: env.num(0, 0, 1),
  SCHEDULER_DEFAULT_BATCH_MAY_BORROW: env.bool(true),
  /** The node-local online-demand hint's directory (default <os tmpdir>/tandem-hints); `off`: the NOTIFY alone. */
  SCHEDULER_HINT_DIR: z.string().min(1).optional(),
};

export type SchedulerEnv = z.infer<z.ZodObject<typeof schedulerEnvSchema>>;

/** Maps the validated env to options; throws (caught by the app's parseEnv caller) on inconsistent values. */
export function toSchedulerOptions(e: SchedulerEnv): SchedulerOptions {
  return defaultSchedulerOptions({
    nodeName: e.SCHEDULER_NODE_NAME ?? hostname(),
    ...(e.SCHEDULER_HINT_DIR !== undefined ? { hintDir: e.SCHEDULER_HINT_DIR === 'off' ? null : resolve(e.SCHEDULER_HINT_DIR) } : {}),
    agentEnabled: e.SCHEDULER_AGENT,
    discoverGpus: e.SCHEDULER_DISCOVER_GPUS,
    discoverCpu: e.SCHEDULER_DISCOVER_CPU,
    declaredDevices: e.SCHEDULER_DECLARED_DEVICES ?? [],
    leaseTtlMs: e.SCHEDULER_LEASE_TTL_MS,
    heartbeatMs: e.SCHEDULER_HEARTBEAT_MS,
    nodeTimeoutMs: e.SCHEDULER_NODE_TIMEOUT_MS,
    preemptGraceMs: e.SCHEDULER_PREEMPT_GRACE_MS,
    reaperMs: e.SCHEDULER_REAPER_MS,
    placement: e.SCHEDULER_PLACEMENT,
    defaultPartition: {
      online: e.SCHEDULER_DEFAULT_ONLINE_SHARE,
      batch: Math.min(e.SCHEDULER_DEFAULT_BATCH_SHARE, 1 - e.SCHEDULER_DEFAULT_ONLINE_SHARE),
      batchMayBorrow: e.SCHEDULER_DEFAULT_BATCH_MAY_BORROW,
    },
  });
}
