import type { ConnectionOptions } from 'bullmq';
import { resolveQueueConnection, type ResolvedQueueConnection } from '@tandem/queue';
import type { QueueConfig } from '@tandem/shared';

/**
 * The chunk queue's connection. On BullMQ's PostgreSQL backend the `bullmq` schema must exist
 * before the first Queue/Worker touches it; `migrate: true` makes BullMQ create/upgrade it
 * (serialized by its own advisory lock), so a fresh `npm start` without Redis works.
 */
export function chunkQueueConnection(cfg: QueueConfig): ResolvedQueueConnection {
  const resolved = resolveQueueConnection(cfg);
  if (cfg.backend !== 'postgres') return resolved;
  const connection = { ...(resolved.connection as object), migrate: true } as unknown as ConnectionOptions;
  return { connection, prefix: resolved.prefix };
}
