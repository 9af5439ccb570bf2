import { createPostgresBackend, setDefaultBackendFactory, type ConnectionOptions } from 'bullmq';
import type { QueueConfig } from '@tandem/shared';

/** Schema that holds BullMQ's own tables when it runs on Postgres (kept apart from ours). */
export const BULLMQ_PG_SCHEMA = 'bullmq';

export interface ResolvedQueueConnection {
  /** Passed to every Queue/Worker/FlowProducer (and to BullModule.forRoot). */
  connection: ConnectionOptions;
  prefix: string;
}

/**
 * Points BullMQ at Redis (its default) or at its PostgreSQL backend. The backend factory is
 * process-wide in BullMQ 6, which is what lets @nestjs/bullmq's providers use it unchanged.
 */
export function resolveQueueConnection(cfg: QueueConfig): ResolvedQueueConnection {
  if (cfg.backend === 'postgres') {
    setDefaultBackendFactory(createPostgresBackend);
    // BullMQ's Postgres backend accepts a pool config where its Redis types expect RedisOptions.
    // migrate: BullMQ creates/upgrades its own schema on first connect (its tables, not ours).
    const pgConnection = { connectionString: cfg.url, schema: BULLMQ_PG_SCHEMA, max: 10, migrate: true };
    return { connection: pgConnection as unknown as ConnectionOptions, prefix: cfg.prefix };
  }
  setDefaultBackendFactory(undefined);
  const u = new URL(cfg.url);
  return {
    connection: {
      host: u.hostname,
      port: Number(u.port || 6379),
      username: u.username || undefined,
      password: u.password ? decodeURIComponent(u.password) : undefined,
      db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
      tls: u.protocol === 'rediss:' ? {} : undefined,
      maxRetriesPerRequest: null,
    },
    prefix: cfg.prefix,
  };
}
