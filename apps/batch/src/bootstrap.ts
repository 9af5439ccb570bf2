import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { ApiKeyService, registerAuthHook } from '@tandem/auth';
import { configureGpuProcess } from '@tandem/inference';
import { collectProcessMetrics, createHttpApp, createRootLogger, type PinoLogger } from '@tandem/shared';
import type { BatchConfig } from './config/batch.config';
import { BatchModule } from './batch.module';
import { BUILT_IN_REDUCER_NAMES } from './reducers/built-in.reducers';
import { BUILT_IN_TASK_NAMES } from './tasks/task.registry';
import { loadUserCode } from './user-tasks/user-code.loader';

export interface RunningBatch {
  app: NestFastifyApplication;
  url: string;
  logger: PinoLogger;
}

/**
 * Builds and starts the batch app; used by main.ts and by e2e tests (port 0 = any free port).
 * Rejects with UserCodeConflictError (a ConfigValidationError) when BATCH_TASKS_DIR is ambiguous.
 */
export async function startBatch(cfg: BatchConfig): Promise<RunningBatch> {
  const logger = createRootLogger(cfg.logLevel, 'batch');
  configureGpuProcess(cfg.gpu);
  // Before Nest: an error thrown while Nest builds providers ends the process (exit 1), and a
  // conflict here must reject (tests) or exit 2 (main.ts: the same files would fail again).
  const userCode = await loadUserCode({
    dir: cfg.tasks.dir,
    required: cfg.tasks.required,
    builtIn: { tasks: BUILT_IN_TASK_NAMES, reducers: BUILT_IN_REDUCER_NAMES },
    log: logger.child({ context: 'UserCode' }),
  });
  collectProcessMetrics();
  const app = await createHttpApp(BatchModule.forRoot(cfg, { userCode, logger }), {
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
