import { z } from 'zod';
import { env } from './env-parser';

/**
 * The infrastructure part every app shares: where Postgres (the truth) and the queue store are.
 * The launcher resolves these (embedded Postgres, BullMQ-on-Postgres) and passes them explicitly,
 * so an app never falls back silently.
 */
export const infraSchema = {
  DATABASE_URL: env.postgresUrl().default('postgres://postgres@127.0.0.1:5432/tandem'),
  /** `redis` (default) or `postgres` (BullMQ's PostgreSQL backend, schema `bullmq`). */
  QUEUE_BACKEND: z.enum(['redis', 'postgres']).default('redis'),
  REDIS_URL: env.redisUrl().default('redis://127.0.0.1:6379'),
  /** Prefix for queue keys/names, so several deployments (or test files) share one store. */
  QUEUE_PREFIX: z
    .string()
    .regex(/^[a-zA-Z0-9_-]{1,40}$/, 'letters, digits, _ and - only')
    .default('tandem'),
  LOG_LEVEL: env.logLevel(),
  HOST: z.string().min(1).default('0.0.0.0'),
  /** How long SIGTERM may take to drain in-flight work before the process gives up. */
  SHUTDOWN_GRACE_S: env.num(30, 0, 3600),
  /**
   * After SIGTERM, keep serving this long before closing. Closing destroys every connection
   * without a request in progress, including one whose request bytes are still unread in the
   * kernel: the client sees ECONNRESET for a request it already sent.
   */
  SHUTDOWN_DRAIN_DELAY_MS: env.num(500, 0, 60_000),
};

export interface InfraConfig {
  databaseUrl: string;
  queue: QueueConfig;
  logLevel: string;
  host: string;
  shutdownGraceMs: number;
  shutdownDrainDelayMs: number;
}

export type QueueConfig = { backend: 'redis'; url: string; prefix: string } | { backend: 'postgres'; url: string; prefix: string };

type InfraEnv = { [K in keyof typeof infraSchema]: z.infer<(typeof infraSchema)[K]> };

export function toInfraConfig(e: InfraEnv): InfraConfig {
  return {
    databaseUrl: e.DATABASE_URL,
    queue:
      e.QUEUE_BACKEND === 'redis'
        ? { backend: 'redis', url: e.REDIS_URL, prefix: e.QUEUE_PREFIX }
        : { backend: 'postgres', url: e.DATABASE_URL, prefix: e.QUEUE_PREFIX },
    logLevel: e.LOG_LEVEL,
    host: e.HOST,
    shutdownGraceMs: Math.round(e.SHUTDOWN_GRACE_S * 1000),
    shutdownDrainDelayMs: Math.round(e.SHUTDOWN_DRAIN_DELAY_MS),
  };
}
