import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { LoggerService } from '@nestjs/common';
import pino, { type DestinationStream, type Logger as PinoLogger } from 'pino';

export type { DestinationStream, PinoLogger };

/**
 * One structured JSON logger per process; secrets are redacted by path. `destination`: where the
 * JSON lines go instead of stdout (tests read what an app logged).
 */
export function createRootLogger(level: string, app: string, destination?: DestinationStream): PinoLogger {
  const opts = {
    level,
    base: { app, pid: process.pid },
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.token', '*.apiKey'],
      censor: '[redacted]',
    },
  };
  return destination ? pino(opts, destination) : pino(opts);
}

/** Honour an incoming `x-request-id` (trimmed, bounded) or mint one; Fastify logs it as `reqId`. */
export function requestIdFrom(req: IncomingMessage): string {
  const header = req.headers['x-request-id'];
  const value = Array.isArray(header) ? header[0] : header;
  if (value && /^[\w.:-]{1,128}$/.test(value)) return value;
  return randomUUID();
}

/** Routes Nest's own logging (bootstrap, exceptions) into the same pino stream. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly root: PinoLogger) {}

  private write(level: 'info' | 'error' | 'warn' | 'debug' | 'trace', message: unknown, params: unknown[]): void {
    const context = typeof params[params.length - 1] === 'string' ? (params.pop() as string) : undefined;
    const logger = context ? this.root.child({ context }) : this.root;
    if (typeof message === 'object' && message !== null) {
      const text = params.find((p): p is string => typeof p === 'string');
      logger[level](message as object, text);
    } else {
      logger[level](String(message));
    }
  }

  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params);
  }
}
