import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Global, Module } from '@nestjs/common';
import type { QueueConfig } from '@tandem/shared';
import { resolveQueueConnection } from './queue-connection';
import { QUEUE_CONFIG, QueueReadiness } from './queue-readiness';

/** The queue transport (BullMQ on Redis or on Postgres). Postgres stays the source of truth. */
@Global()
@Module({})
export class QueueModule {
  static forRoot(cfg: QueueConfig): DynamicModule {
    const resolved = resolveQueueConnection(cfg);
    return {
      module: QueueModule,
      imports: [BullModule.forRoot({ connection: resolved.connection, prefix: resolved.prefix })],
      providers: [{ provide: QUEUE_CONFIG, useValue: cfg }, QueueReadiness],
      exports: [QUEUE_CONFIG, QueueReadiness, BullModule],
    };
  }
}
