import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import type { QueueConfig, ReadinessCheck } from '@tandem/shared';

export const QUEUE_CONFIG = Symbol('QUEUE_CONFIG');

/** Readiness of the queue store: PING on Redis, SELECT 1 when BullMQ runs on Postgres. */
@Injectable()
export class QueueReadiness implements ReadinessCheck, OnApplicationShutdown {
  readonly name: string;
  private redis?: Redis;

  constructor(@Inject(QUEUE_CONFIG) private readonly cfg: QueueConfig) {
    this.name = cfg.backend === 'redis' ? 'queue(redis)' : 'queue(postgres)';
  }

  async check(): Promise<void> {
    if (this.cfg.backend === 'redis') {
      if (!this.redis) {
        this.redis = new Redis(this.cfg.url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
        // Failures surface through check(); the event would otherwise be logged as unhandled.
        this.redis.on('error', () => undefined);
      }
      if (this.redis.status === 'wait' || this.redis.status === 'end') await this.redis.connect();
      const pong = await this.redis.ping();
      if (pong !== 'PONG') throw new Error(`unexpected PING reply ${pong}`);
      return;
    }
    const client = new Client({ connectionString: this.cfg.url, connectionTimeoutMillis: 1_500 });
    try {
      await client.connect();
      await client.query('SELECT 1');
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.redis?.disconnect();
  }
}
