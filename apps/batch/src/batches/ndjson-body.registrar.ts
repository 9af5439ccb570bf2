import { Injectable, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';

export const NDJSON = 'application/x-ndjson';

/** Lets NDJSON uploads reach the controller as the raw stream (parsed line by line, never buffered). */
@Injectable()
export class NdjsonBodyRegistrar implements OnModuleInit {
  constructor(private readonly host: HttpAdapterHost) {}

  onModuleInit(): void {
    const fastify = this.host.httpAdapter?.getInstance<FastifyInstance>();
    if (!fastify || fastify.hasContentTypeParser(NDJSON)) return;
    fastify.addContentTypeParser(NDJSON, (_req, payload, done) => done(null, payload));
  }
}
