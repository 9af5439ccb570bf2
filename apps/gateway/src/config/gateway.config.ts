import { z } from 'zod';
import { env, infraSchema, parseEnv, toInfraConfig, withSecretFiles, type EnvSource, type InfraConfig } from '@tandem/shared';
import { authEnvSchema, toAuthOptions, type AuthOptions } from '@tandem/auth';
import { schedulerEnvSchema, toSchedulerOptions, type SchedulerOptions } from '@tandem/scheduler';
import { gpuEnvSchema, toGpuProcessSettings, type GpuProcessSettings, type KeepWarmOptions } from '@tandem/inference';

const gatewaySchema = z.object({
  ...infraSchema,
  ...authEnvSchema,
  /** Device ledger: SCHEDULER_NODE_NAME, SCHEDULER_DECLARED_DEVICES (JSON), lease TTL, heartbeat, grace… */
  ...schedulerEnvSchema,
  /** TANDEM_SIMULATED_GPU*, CUDA_VISIBLE_DEVICES (libs/inference/src/gpu/gpu-env.ts). */
  ...gpuEnvSchema,
  GATEWAY_PORT: env.port(8000),
  GATEWAY_GRPC_PORT: env.port(8001),
  /** Largest gRPC message accepted or sent (RESOURCE_EXHAUSTED beyond it). */
  GATEWAY_GRPC_MAX_MESSAGE_MB: env.num(64, 0.001, 2048),
  /** How often the replica autoscaler re-evaluates (ms). */
  AUTOSCALER_TICK_MS: env.int(250, 20, 60_000),
  /** Triton-style model repository: <repo>/<model>/<version>/model.onnx + config.json. */
  MODEL_REPOSITORY: z.string().min(1).default('models'),
  GATEWAY_BODY_LIMIT_MB: env.num(64, 0.001, 2048),
  GATEWAY_LOG_REQUESTS: env.bool(false),
  /** Deadline (ms) for infer requests that carry no `timeout` parameter and whose model sets none. */
  INFERENCE_DEFAULT_TIMEOUT_MS: env.int(30_000, 1, 3_600_000),
  /** Upper bound (ms) on a client's `timeout` parameter. */
  INFERENCE_MAX_TIMEOUT_MS: env.int(300_000, 1, 3_600_000),
  /** CPU threads the local capacity provider may hand to replicas; 0 = all cores. */
  INFERENCE_CPU_THREADS: env.int(0, 0, 1024),
  /** An idle CPU replica of a model in use runs a zero batch of 1 this often (ms), so its memory stays warm; 0 = off. */
  INFERENCE_KEEP_WARM_MS: env.int(50, 0, 60_000),
  /** ...while the model served a request in the last this many seconds. */
  INFERENCE_KEEP_WARM_WINDOW_S: env.int(600, 1, 86_400),
  /** Co-location: models with traffic hold online allocations in the device ledger (revoking borrowed batch share). */
  HYBRID_ONLINE_CLAIMS: env.bool(true),
  /**
   * What online traffic claims: `partition` = the node's whole online CPU partition while any model
   * has traffic (batch only runs on idle time); `replicas` = each model's replicas' threads, plus
   * the whole partition under the SLO policy (HYBRID_ONLINE_P99_TARGET_MS).
   */
  HYBRID_ONLINE_CLAIM: z.enum(['partition', 'replicas']).default('partition'),
  /** Online SLO: a model whose p99 (last second) exceeds this claims the whole online partition; 0 = off. */
  HYBRID_ONLINE_P99_TARGET_MS: env.num(0, 0, 600_000),
  /** How often online demand is sampled (ms). */
  HYBRID_TICK_MS: env.int(10, 5, 60_000),
  /** Online share is kept this long after a model's last request (ms) before batch may borrow it again. */
  HYBRID_HOLD_DOWN_MS: env.int(3_000, 0, 3_600_000),
  /** The batch app's REST API, which the admin panel's `/admin/api/batches` proxies to. */
  BATCH_API_URL: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:8100'),
});

export interface GatewayConfig extends InfraConfig {
  auth: AuthOptions;
  scheduler: SchedulerOptions;
  port: number;
  grpcPort: number;
  grpcMaxMessageBytes: number;
  autoscalerTickMs: number;
  modelRepository: string;
  bodyLimitBytes: number;
  logRequests: boolean;
  inference: { defaultTimeoutMs: number; maxTimeoutMs: number; cpuThreads: number | undefined; gpu: GpuProcessSettings; keepWarm: KeepWarmOptions };
  batchApiUrl: string;
  hybrid: { onlineClaims: boolean; claim: 'partition' | 'replicas'; tickMs: number; holdDownMs: number; p99TargetMs: number };
}

export const GATEWAY_CONFIG = Symbol('GATEWAY_CONFIG');

/** Validates the gateway's environment once at boot; throws ConfigValidationError naming each bad variable. */
export function loadGatewayConfig(source: EnvSource): GatewayConfig {
  const e = parseEnv(gatewaySchema, withSecretFiles(source));
  return {
    ...toInfraConfig(e),
    auth: toAuthOptions(e),
    scheduler: toSchedulerOptions(e),
    port: e.GATEWAY_PORT,
    grpcPort: e.GATEWAY_GRPC_PORT,
    grpcMaxMessageBytes: Math.round(e.GATEWAY_GRPC_MAX_MESSAGE_MB * 1024 * 1024),
    autoscalerTickMs: e.AUTOSCALER_TICK_MS,
    modelRepository: e.MODEL_REPOSITORY,
    bodyLimitBytes: Math.round(e.GATEWAY_BODY_LIMIT_MB * 1024 * 1024),
    logRequests: e.GATEWAY_LOG_REQUESTS,
    inference: {
      defaultTimeoutMs: e.INFERENCE_DEFAULT_TIMEOUT_MS,
      maxTimeoutMs: e.INFERENCE_MAX_TIMEOUT_MS,
      cpuThreads: e.INFERENCE_CPU_THREADS === 0 ? undefined : e.INFERENCE_CPU_THREADS,
      gpu: toGpuProcessSettings(e),
      keepWarm: { periodMs: e.INFERENCE_KEEP_WARM_MS, activeForMs: e.INFERENCE_KEEP_WARM_WINDOW_S * 1000 },
    },
    hybrid: {
      onlineClaims: e.HYBRID_ONLINE_CLAIMS,
      claim: e.HYBRID_ONLINE_CLAIM,
      tickMs: e.HYBRID_TICK_MS,
      holdDownMs: e.HYBRID_HOLD_DOWN_MS,
      p99TargetMs: e.HYBRID_ONLINE_P99_TARGET_MS,
    },
    batchApiUrl: e.BATCH_API_URL.replace(/\/+$/, ''),
  };
}
