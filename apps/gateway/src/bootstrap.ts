import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { ApiKeyService, registerAuthHook } from '@tandem/auth';
import { collectProcessMetrics, createHttpApp, createRootLogger, type DestinationStream, type PinoLogger } from '@tandem/shared';
import type { GatewayConfig } from './config/gateway.config';
import { registerAdminBodyLimit } from './admin/admin-body-limit';
import { GatewayModule } from './gateway.module';
import { registerAdmissionHook } from './inference/admission.hook';
import { InferenceService } from './inference/inference.service';
import { registerInferRoutes } from './inference/oip-infer.route';

export interface RunningGateway {
  app: NestFastifyApplication;
  url: string;
  logger: PinoLogger;
}

/**
 * Builds and starts the gateway; used by main.ts and by e2e tests (port 0 = any free port;
 * `logDestination`: read the app's JSON log lines instead of stdout).
 */
export async function startGateway(cfg: GatewayConfig, opts: { logDestination?: DestinationStream } = {}): Promise<RunningGateway> {
  const logger = createRootLogger(cfg.logLevel, 'gateway', opts.logDestination);
  collectProcessMetrics();
  const app = await createHttpApp(GatewayModule.forRoot(cfg, logger), {
    logger,
    bodyLimitBytes: cfg.bodyLimitBytes,
    logRequests: cfg.logRequests,
  });
  const fastify = app.getHttpAdapter().getInstance();
  registerAdminBodyLimit(fastify);
  registerAuthHook(fastify, app.get(ApiKeyService));
  registerAdmissionHook(fastify, app.get(InferenceService));
  registerInferRoutes(fastify, app.get(InferenceService));
  await app.listen({ port: cfg.port, host: cfg.host });
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : cfg.port;
  const url = `http://${cfg.host === '0.0.0.0' ? '127.0.0.1' : cfg.host}:${port}`;
  logger.info({ url, queue: cfg.queue.backend }, `gateway REST listening on ${url}`);
  return { app, url, logger };
}
