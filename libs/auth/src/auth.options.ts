import { z } from 'zod';
import { env } from '@tandem/shared';

/** Auth and limit settings shared by both apps (spread into each app's env schema). */
export const authEnvSchema = {
  /** `on` (default) or `off` — off only for local development. */
  TANDEM_AUTH: z.enum(['on', 'off']).default('on'),
  /** A bootstrap admin key for automation (at least 16 characters). */
  TANDEM_ADMIN_KEY: z.string().min(16, 'must be at least 16 characters').max(256).optional(),
  AUTH_OPEN_HEALTH: env.bool(true),
  AUTH_OPEN_METRICS: env.bool(true),
  /** Requests per second per key (token bucket); 0 = unlimited. */
  RATE_LIMIT_PER_KEY_RPS: env.num(0, 0, 1_000_000),
  RATE_LIMIT_BURST: env.int(0, 0, 10_000_000),
  /** Failed authentications (401) per second per client address before 429; 0 = unlimited. */
  AUTH_FAIL_RATE_LIMIT_RPS: env.num(20, 0, 1_000_000),
  AUTH_FAIL_RATE_LIMIT_BURST: env.int(50, 1, 10_000_000),
};

export interface AuthOptions {
  enabled: boolean;
  bootstrapAdminKey?: string;
  openHealth: boolean;
  openMetrics: boolean;
  rateLimitRps: number;
  rateLimitBurst: number;
  /** Token bucket on failed authentications per client address (guessing keys costs lookups). */
  authFailRps: number;
  authFailBurst: number;
}

type AuthEnv = z.infer<z.ZodObject<typeof authEnvSchema>>;

export function toAuthOptions(e: AuthEnv): AuthOptions {
  return {
    enabled: e.TANDEM_AUTH === 'on',
    bootstrapAdminKey: e.TANDEM_ADMIN_KEY,
    openHealth: e.AUTH_OPEN_HEALTH,
    openMetrics: e.AUTH_OPEN_METRICS,
    rateLimitRps: e.RATE_LIMIT_PER_KEY_RPS,
    rateLimitBurst: e.RATE_LIMIT_BURST || Math.max(1, Math.ceil(e.RATE_LIMIT_PER_KEY_RPS * 2)),
    authFailRps: e.AUTH_FAIL_RATE_LIMIT_RPS,
    authFailBurst: e.AUTH_FAIL_RATE_LIMIT_BURST,
  };
}

export const AUTH_OPTIONS = Symbol('AUTH_OPTIONS');
