import { NestFactory } from '@nestjs/core';
import { LogController, type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { HttpExceptionFilter } from '../errors/http-exception.filter';
import { lazyChildLogger } from '../logging/lazy-child-logger';
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
    childLoggerFactory: lazyChildLogger,
    bodyLimit: opts.bodyLimitBytes,
    // Errors Fastify raises before Nest sees the request (URI too long, bad URL encoding) get
    // the same `{"error": ...}` body as everything else.
    frameworkErrors: (error: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
      const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400;
      void reply.status(status).type('application/json').send({ error: error.message });
    },
  });
  // Client-supplied ids are echoed back so callers can correlate logs.
  const fastify = adapter.getInstance();
  // Once close() starts, answers still in flight tell keep-alive clients to hang up; otherwise
  // their idle sockets hold the server open until the keep-alive timeout.
  let closing = false;
  fastify.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  // Callback style: an async hook costs every response a promise.
  fastify.addHook('onSend', (request, reply, _payload, done) => {
    void reply.header('x-request-id', request.id);
    if (closing) void reply.header('connection', 'close');
    done();
  });
  const app = await NestFactory.create<NestFastifyApplication>(module as never, adapter, {
    logger: new PinoNestLogger(opts.logger),
    bufferLogs: false,
  });
  app.useGlobalFilters(new HttpExceptionFilter());
  return app;
}

/**
 * SIGTERM/SIGINT: keep serving for `drainDelayMs` (requests already sent get read), then stop
 * accepting, let Nest's shutdown hooks drain (in-flight requests, queues, pools), and exit 0.
 * A second signal, or the grace period running out, exits 1 at once.
 */
export function installGracefulShutdown(app: NestFastifyApplication, logger: PinoLogger, opts: { graceMs: number; drainDelayMs: number }): void {
  const { graceMs, drainDelayMs } = opts;
  let closing = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (closing) {
      logger.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(1);
    }
    closing = true;
    logger.info({ signal, graceMs, drainDelayMs }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error({ graceMs }, 'grace period exceeded: exiting');
      process.exit(1);
    }, graceMs);
    timer.unref();
    const close = (): Promise<void> => new Promise<void>((r) => setTimeout(r, drainDelayMs)).then(() => app.close());
    close().then(
      () => {
        logger.info('stopped');
        logger.flush?.();
        process.exit(0);
      },
      (e: unknown) => {
        logger.error({ err: e }, 'error while shutting down');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
