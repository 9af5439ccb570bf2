import { NestFactory } from '@nestjs/core';
import { LogController } from 'fastify';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { HttpExceptionFilter } from '../errors/http-exception.filter';
import { PinoNestLogger, requestIdFrom, type PinoLogger } from '../logging/logger';

export interface HttpAppOptions {
  logger: PinoLogger;
  /** Largest accepted request body; beyond it Fastify answers 413. */
  bodyLimitBytes: number;
  /** Log each request/response line (off in benchmarks: it costs throughput). */
  logRequests?: boolean;
}

/**
 * Both apps boot the same way: Fastify with pino and request ids, the one exception filter,
 * and Nest shutdown hooks so SIGTERM closes sockets, pools and queues before exit.
 */
export async function createHttpApp(module: unknown, opts: HttpAppOptions): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    loggerInstance: opts.logger,
    logController: new LogController({ disableRequestLogging: !(opts.logRequests ?? true) }),
    genReqId: requestIdFrom,
    bodyLimit: opts.bodyLimitBytes,
  });
  // Client-supplied ids are echoed back so callers can correlate logs.
  adapter.getInstance().addHook('onSend', async (request, reply) => {
    void reply.header('x-request-id', request.id);
  });
  const app = await NestFactory.create<NestFastifyApplication>(module as never, adapter, {
    logger: new PinoNestLogger(opts.logger),
    bufferLogs: false,
  });
  app.useGlobalFilters(new HttpExceptionFilter());
  app.enableShutdownHooks();
  return app;
}
