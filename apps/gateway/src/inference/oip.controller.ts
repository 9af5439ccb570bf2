import { Controller, Get, Param, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { encodeModelMetadata, type OipModelMetadata } from '@tandem/inference';
import { InferenceService, type ServerMetadata } from './inference.service';

/**
 * OIP v2 REST (KServe/Triton): server and model metadata, readiness. The infer routes are plain
 * Fastify routes on the same service (oip-infer.route.ts), outside Nest's per-request pipeline.
 */
@Controller('v2')
export class OipController {
  constructor(private readonly inference: InferenceService) {}

  @Get()
  server(): ServerMetadata {
    return this.inference.serverMetadata();
  }

  @Get('models/:model')
  model(@Param('model') model: string): OipModelMetadata {
    return encodeModelMetadata(this.inference.modelMetadata(model));
  }

  @Get('models/:model/versions/:version')
  modelVersion(@Param('model') model: string, @Param('version') version: string): OipModelMetadata {
    return encodeModelMetadata(this.inference.modelMetadata(model, version));
  }

  @Get('models/:model/ready')
  ready(@Param('model') model: string, @Res({ passthrough: true }) reply: FastifyReply): object {
    return this.readiness(model, undefined, reply);
  }

  @Get('models/:model/versions/:version/ready')
  readyVersion(@Param('model') model: string, @Param('version') version: string, @Res({ passthrough: true }) reply: FastifyReply): object {
    return this.readiness(model, version, reply);
  }

  // OIP: readiness is the status code (200 true, 4xx false); unknown models are 404. A version
  // that failed to load says why (`reason`, beyond OIP's body).
  private readiness(model: string, version: string | undefined, reply: FastifyReply): object {
    const { ready, reason } = this.inference.modelReadiness(model, version);
    if (!ready) void reply.status(400);
    return { name: model, ...(version ? { version } : {}), ready, ...(reason ? { reason } : {}) };
  }
}
