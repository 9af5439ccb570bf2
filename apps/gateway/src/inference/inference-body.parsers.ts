import { Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { readAlignedBody } from './binary-body.reader';
import { HEADER_LENGTH } from './infer-body';

/**
 * Teaches Fastify the binary tensor data extension's bodies: `application/octet-stream`
 * (and any other type when the request carries Inference-Header-Content-Length, as Triton
 * clients send) arrive as a Buffer, read so the tensors can be views of it (readAlignedBody).
 * Fastify's server-wide bodyLimit applies (413 beyond).
 * JSON parsing stays Fastify's own.
 */
@Injectable()
export class InferenceBodyParsers implements OnModuleInit {
  constructor(private readonly host: HttpAdapterHost) {}

  onModuleInit(): void {
    const fastify = this.host.httpAdapter.getInstance<FastifyInstance>();
    if (!fastify.hasContentTypeParser('application/octet-stream')) {
      fastify.addContentTypeParser('application/octet-stream', (req, payload, done) => readAlignedBody(req, payload, done));
    }
    if (!fastify.hasContentTypeParser('*')) {
      fastify.addContentTypeParser('*', (req, payload, done) => {
        if (req.headers[HEADER_LENGTH] !== undefined) return readAlignedBody(req, payload, done);
        const err = Object.assign(new Error(`unsupported content type '${req.headers['content-type'] ?? ''}'`), { statusCode: 415 });
        done(err, undefined);
      });
    }
  }
}
