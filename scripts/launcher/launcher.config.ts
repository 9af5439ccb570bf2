import { z } from 'zod';
import { env, parseEnv, type EnvSource } from '@tandem/shared';
import type { MallocMode } from './allocator-env';

/**
 * What `npm start` itself needs. Explicit DATABASE_URL / REDIS_URL are used as given and must
 * answer; without them the launcher probes the local defaults and falls back to embedded
 * Postgres / BullMQ-on-Postgres, saying so.
 */
const launcherSchema = z.object({
  DATABASE_URL: env.postgresUrl().optional(),
  REDIS_URL: env.redisUrl().optional(),
  QUEUE_BACKEND: z.enum(['redis', 'postgres']).optional(),
  LOCAL_DATABASE_URL: env.postgresUrl().default('postgres://postgres@127.0.0.1:5432/tandem'),
  LOCAL_REDIS_URL: env.redisUrl().default('redis://127.0.0.1:6379'),
  TANDEM_DATA_DIR: z.string().min(1).default('.data'),
  EMBEDDED_PG_PORT: env.port(54329),
  START_READY_TIMEOUT_S: env.num(60, 1, 600),
  /** malloc for the gateway and batch processes (scripts/launcher/allocator-env.ts). */
  TANDEM_MALLOC: z.enum(['glibc', 'jemalloc', 'system']).default('glibc'),
});

export interface LauncherConfig {
  databaseUrl?: string;
  redisUrl?: string;
  queueBackend?: 'redis' | 'postgres';
  localDatabaseUrl: string;
  localRedisUrl: string;
  dataDir: string;
  embeddedPgPort: number;
  readyTimeoutMs: number;
  malloc: MallocMode;
}

export function loadLauncherConfig(source: EnvSource): LauncherConfig {
  const e = parseEnv(launcherSchema, source);
  return {
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    queueBackend: e.QUEUE_BACKEND,
    localDatabaseUrl: e.LOCAL_DATABASE_URL,
    localRedisUrl: e.LOCAL_REDIS_URL,
    dataDir: e.TANDEM_DATA_DIR,
    embeddedPgPort: e.EMBEDDED_PG_PORT,
    readyTimeoutMs: Math.round(e.START_READY_TIMEOUT_S * 1000),
    malloc: e.TANDEM_MALLOC,
  };
}
