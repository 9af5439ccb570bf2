import multipart from '@fastify/multipart';
import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';

export const JSONL = 'application/jsonl';
/** Room for the multipart framing (boundaries, part headers, small fields) around the file. */
export const MULTIPART_OVERHEAD_BYTES = 64 * 1024;

/**
 * Body handling for POST /v1/files:
 * - multipart/form-data through @fastify/multipart's streaming API (`request.parts()`; the file
 *   part is a stream, never buffered), with busboy's own caps on parts and fields;
 * - a raw JSONL body (`application/jsonl`) reaches the controller as the request stream, like
 *   `application/x-ndjson` does through NdjsonBodyRegistrar (which must stay the one to register
 *   that type: it skips its JSON parser and drain hook when NDJSON is already known).
 * Draining a rejected upload's rest (then closing) is NdjsonBodyRegistrar's onResponse hook.
 */
@Injectable()
export class FilesBodyRegistrar implements OnModuleInit {
  constructor(
    private readonly host: HttpAdapterHost,
    @Inject(BATCH_CONFIG) private readonly cfg: BatchConfig,
  ) {}

  onModuleInit(): void {
    const fastify = this.host.httpAdapter?.getInstance<FastifyInstance>();
    if (!fastify) return;
    if (!fastify.hasContentTypeParser(JSONL)) fastify.addContentTypeParser(JSONL, (_req, payload, done) => done(null, payload));
    if (fastify.hasRequestDecorator('isMultipart')) return;
    // Loaded at ready() (before listen), on the root context: the plugin is fastify-plugin wrapped.
    void fastify.register(multipart, {
      throwFileSizeLimit: true,
      limits: {
        // One byte over our own cap, so the JSONL validator answers the 413 with its message first.
        fileSize: this.cfg.files.limitBytes + 1,
        files: 1,
        fields: 8,
        fieldSize: 1024,
        fieldNameSize: 100,
        parts: 10,
        headerPairs: 20,
      },
    });
  }
}
