import { z } from 'zod';
import { env, infraSchema, parseEnv, toInfraConfig, type EnvSource, type InfraConfig } from '@tandem/shared';

const gatewaySchema = z.object({
  ...infraSchema,
  GATEWAY_PORT: env.port(8000),
  GATEWAY_GRPC_PORT: env.port(8001),
  /** Triton-style model repository: <repo>/<model>/<version>/model.onnx + config.json. */
  MODEL_REPOSITORY: z.string().min(1).default('models'),
  GATEWAY_BODY_LIMIT_MB: env.num(64, 0.001, 2048),
  GATEWAY_LOG_REQUESTS: env.bool(false),
});

export interface GatewayConfig extends InfraConfig {
  port: number;
  grpcPort: number;
  modelRepository: string;
  bodyLimitBytes: number;
  logRequests: boolean;
}

export const GATEWAY_CONFIG = Symbol('GATEWAY_CONFIG');

/** Validates the gateway's environment once at boot; throws ConfigValidationError naming each bad variable. */
export function loadGatewayConfig(source: EnvSource): GatewayConfig {
  const e = parseEnv(gatewaySchema, source);
  return {
    ...toInfraConfig(e),
    port: e.GATEWAY_PORT,
    grpcPort: e.GATEWAY_GRPC_PORT,
    modelRepository: e.MODEL_REPOSITORY,
    bodyLimitBytes: Math.round(e.GATEWAY_BODY_LIMIT_MB * 1024 * 1024),
    logRequests: e.GATEWAY_LOG_REQUESTS,
  };
}
