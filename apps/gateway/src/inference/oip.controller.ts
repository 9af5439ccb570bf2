import { Body, Controller, Get, Headers, HttpCode, Param, Post, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { decodeInferRequest, encodeInferResponse, encodeModelMetadata, type OipInferResponse, type OipModelMetadata } from '@tandem/inference';
import { HEADER_LENGTH, splitInferBody } from './infer-body';
import { InferenceService, type ServerMetadata } from './inference.service';

/**
 * OIP v2 REST (KServe/Triton). A thin adapter: split body → decode → service → encode.
 * Binary tensor data extension per request (Inference-Header-Content-Length).
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

  @Post('models/:model/infer')
  @HttpCode(200)
  infer(
    @Param('model') model: string,
    @Body() body: unknown,
    @Headers(HEADER_LENGTH) headerLength: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<OipInferResponse | Buffer> {
    return this.runInfer(model, undefined, body, headerLength, reply);
  }

  @Post('models/:model/versions/:version/infer')
  @HttpCode(200)
  inferVersion(
    @Param('model') model: string,
    @Param('version') version: string,
    @Body() body: unknown,
    @Headers(HEADER_LENGTH) headerLength: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<OipInferResponse | Buffer> {
    return this.runInfer(model, version, body, headerLength, reply);
  }

  // OIP: readiness is the status code (200 true, 4xx false); unknown models are 404. A version
  // that failed to load says why (`reason`, beyond OIP's body).
  private readiness(model: string, version: string | undefined, reply: FastifyReply): object {
    const { ready, reason } = this.inference.modelReadiness(model, version);
    if (!ready) void reply.status(400);
    return { name: model, ...(version ? { version } : {}), ready, ...(reason ? { reason } : {}) };
  }

  private async runInfer(
    model: string,
    version: string | undefined,
    body: unknown,
    headerLength: string | undefined,
    reply: FastifyReply,
  ): Promise<OipInferResponse | Buffer> {
    let decoded;
    try {
      const { header, binary } = splitInferBody(body, headerLength);
      decoded = decodeInferRequest(model, version, header, binary);
    } catch (e) {
      this.inference.recordRejected(model, e);
      throw e;
    }
    const result = await this.inference.infer(decoded.request);
    const { header, binary } = encodeInferResponse(result, decoded.id, decoded.binaryOutput);
    if (binary.length === 0) return header;
    const json = Buffer.from(JSON.stringify(header), 'utf8');
    void reply.header('Inference-Header-Content-Length', String(json.length)).type('application/octet-stream');
    return Buffer.concat([json, ...binary]);
  }
}
