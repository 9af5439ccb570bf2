import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { ApiKeyService, registerAuthHook } from '@tandem/auth';
import { collectProcessMetrics, createHttpApp, createRootLogger, type PinoLogger } from '@tandem/shared';
import type { BatchConfig } from './config/batch.config';
import { BatchModule } from './batch.module';

export interface RunningBatch {
  app: NestFastifyApplication;
  url: string;
  logger: PinoLogger;
}

/** Builds and starts the batch app; used by main.ts and by e2e tests (port 0 = any free port). */
export async function startBatch(cfg: BatchConfig): Promise<RunningBatch> {
  const logger = createRootLogger(cfg.logLevel, 'batch');
  collectProcessMetrics();
  const app = await createHttpApp(BatchModule.forRoot(cfg), {
    logger,
    bodyLimitBytes: cfg.bodyLimitBytes,
    logRequests: cfg.logRequests,
  });
  registerAuthHook(app.getHttpAdapter().getInstance(), app.get(ApiKeyService));
  await app.listen({ port: cfg.port, host: cfg.host });
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : cfg.port;
  const url = `http://${cfg.host === '0.0.0.0' ? '127.0.0.1' : cfg.host}:${port}`;
  logger.info({ url, queue: cfg.queue.backend }, `batch API listening on ${url}`);
  return { app, url, logger };
}
