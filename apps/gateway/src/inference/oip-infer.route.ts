import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { decodeInferRequest, encodeInferResponse, type OipInferResponse } from '@tandem/inference';
import { requestBodies } from './body-pool';
import { HEADER_LENGTH, splitInferBody } from './infer-body';
import type { InferenceService } from './inference.service';

/** The OIP infer routes (patterns as the router matches them: auth's route policy and admission key on these). */
export const INFER_ROUTES = ['/v2/models/:model/infer', '/v2/models/:model/versions/:version/infer'] as const;

/**
 * `POST /v2/models/:model[/versions/:version]/infer`, a thin adapter: split body → decode →
 * InferenceService → encode. Served as plain Fastify routes on Nest's own Fastify instance, not
 * a Nest controller: the per-request router/interceptor pipeline was ~10 % of a small request's
 * main thread (docs/benchmarks.md "Gateway overhead"). Everything else is the same as for a
 * Nest route: the instance's onRequest hooks (auth by route pattern, admission), body parsers,
 * onSend hooks, and errors go through the instance's error handler, i.e. Nest's global filter.
 */
export function registerInferRoutes(fastify: FastifyInstance, inference: InferenceService): void {
  const handler = (request: FastifyRequest, reply: FastifyReply): Promise<OipInferResponse | Buffer> => {
    const { model, version } = request.params as { model: string; version?: string };
    return runInfer(inference, model, version, request.body, request.headers[HEADER_LENGTH], reply);
  };
  for (const url of INFER_ROUTES) fastify.post(url, handler);
}

async function runInfer(
  inference: InferenceService,
  model: string,
  version: string | undefined,
  body: unknown,
  headerLength: string | string[] | undefined,
  reply: FastifyReply,
): Promise<OipInferResponse | Buffer> {
  let decoded;
  let result;
  try {
    try {
      const { header, binary } = splitInferBody(body, headerLength);
      decoded = decodeInferRequest(model, version, header, binary);
    } catch (e) {
      inference.recordRejected(model, e);
      throw e;
    }
    result = await inference.infer(decoded.request);
  } finally {
    // Settled: the batcher copied the tensors (views of the body) when it dispatched them, or
    // dropped them; the response is built from the model's outputs.
    if (Buffer.isBuffer(body)) requestBodies.give(body.buffer);
  }
  const { header, binary } = encodeInferResponse(result, decoded.id, decoded.binaryOutput);
  if (binary.length === 0) return header;
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  void reply.header('Inference-Header-Content-Length', String(json.length)).type('application/octet-stream');
  return Buffer.concat([json, ...binary]);
}
