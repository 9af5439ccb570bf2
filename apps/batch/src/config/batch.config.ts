import { z } from 'zod';
import { env, infraSchema, parseEnv, toInfraConfig, type EnvSource, type InfraConfig } from '@tandem/shared';

const batchSchema = z.object({
  ...infraSchema,
  BATCH_PORT: env.port(8100),
  MODEL_REPOSITORY: z.string().min(1).default('models'),
  BATCH_BODY_LIMIT_MB: env.num(256, 0.001, 4096),
  BATCH_LOG_REQUESTS: env.bool(false),
});

export interface BatchConfig extends InfraConfig {
  port: number;
  modelRepository: string;
  bodyLimitBytes: number;
  logRequests: boolean;
}

export const BATCH_CONFIG = Symbol('BATCH_CONFIG');

/** Validates the batch app's environment once at boot; throws ConfigValidationError naming each bad variable. */
export function loadBatchConfig(source: EnvSource): BatchConfig {
  const e = parseEnv(batchSchema, source);
  return {
    ...toInfraConfig(e),
    port: e.BATCH_PORT,
    modelRepository: e.MODEL_REPOSITORY,
    bodyLimitBytes: Math.round(e.BATCH_BODY_LIMIT_MB * 1024 * 1024),
    logRequests: e.BATCH_LOG_REQUESTS,
  };
}
