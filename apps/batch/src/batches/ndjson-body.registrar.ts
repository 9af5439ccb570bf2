import type { IncomingMessage } from 'node:http';
import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { DomainException, ErrorCode } from '@tandem/shared';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';
import { chunksOf } from './stream-chunks';
import { drainThenClose } from './upload-drain';

export const NDJSON = 'application/x-ndjson';
const JSON_TYPE = 'application/json';

export function bodyTooLarge(maxBytes: number): DomainException {
  return new DomainException(ErrorCode.PayloadTooLarge, `request body too large (over ${maxBytes} bytes)`);
}

/** Reads a body into memory, failing as soon as a declared or received length passes `maxBytes`. */
async function readCapped(req: IncomingMessage, maxBytes: number): Promise<string> {
  if (Number(req.headers['content-length']) > maxBytes) throw bodyTooLarge(maxBytes);
  const parts: Buffer[] = [];
  let n = 0;
  for await (const b of chunksOf(req)) {
    n += b.length;
    if (n > maxBytes) throw bodyTooLarge(maxBytes);
    parts.push(b);
  }
  return Buffer.concat(parts, n).toString('utf8');
}

/**
 * The batch app's body handling:
 * - NDJSON reaches the controller as the raw stream (parsed line by line with caps, never buffered).
 * - JSON is read with the body limit checked per chunk (and against Content-Length up front),
 *   then parsed by Fastify's own (prototype-poisoning-safe) JSON parser.
 * - Whenever an answer goes out before its request body was read to the end, the rest is drained
 *   for a bounded while and the socket closed (see drainThenClose), so the client reads the 4xx.
 */
@Injectable()
export class NdjsonBodyRegistrar implements OnModuleInit {
  constructor(
    private readonly host: HttpAdapterHost,
    @Inject(BATCH_CONFIG) private readonly cfg: BatchConfig,
  ) {}

  onModuleInit(): void {
    const fastify = this.host.httpAdapter?.getInstance<FastifyInstance>();
    if (!fastify || fastify.hasContentTypeParser(NDJSON)) return;
    fastify.addContentTypeParser(NDJSON, (_req, payload, done) => done(null, payload));
    const parseJson = fastify.getDefaultJsonParser('error', 'error');
    const maxBytes = this.cfg.bodyLimitBytes;
    fastify.removeContentTypeParser(JSON_TYPE);
    fastify.addContentTypeParser(JSON_TYPE, (req, payload, done) => {
      readCapped(payload, maxBytes).then(
        (text) => parseJson(req, text, done),
        (e: unknown) => done(e as Error),
      );
    });
    fastify.addHook('onResponse', async (request) => {
      drainThenClose(request.raw);
    });
  }
}
