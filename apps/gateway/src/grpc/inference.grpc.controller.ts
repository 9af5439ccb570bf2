import { Injectable } from '@nestjs/common';
import { ApiKeyService, bearerToken } from '@tandem/auth';
import { DomainException, ErrorCode, HealthService } from '@tandem/shared';
import { requestBodies } from '../inference/body-pool';
import { InferenceService } from '../inference/inference.service';
import { decodeGrpcInfer, encodeGrpcInfer } from './grpc-tensor.codec';
import type { GrpcCall } from './grpc-http2.server';
import type { ModelInferRequestWire, ModelInferResponseWire } from './grpc-wire.types';

type Unary<Req, Res> = (call: GrpcCall<Req>) => Promise<Res>;

/**
 * inference.GRPCInferenceService: a thin adapter over the same InferenceService as REST.
 * Errors map through the one gRPC status table; client deadlines bound the queue wait.
 */
@Injectable()
export class InferenceGrpcController {
  constructor(
    private readonly inference: InferenceService,
    private readonly health: HealthService,
    private readonly keys: ApiKeyService,
  ) {}

  /** Errors reject; the server maps them through the one gRPC status table (grpc-server.service.ts). */
  private unary<Req, Res>(fn: (req: Req, call: GrpcCall<Req>) => Promise<Res> | Res): Unary<Req, Res> {
    return async (call) => {
      // gRPC carries the key in `authorization` metadata, same form as the HTTP header; the
      // same service as REST applies the per-key and per-address limits (same buckets).
      // A key verified within the cache's lifetime is decided without a promise, as in the REST hook.
      const bearer = bearerToken(call.headers.authorization);
      if (!this.keys.authorizeNow(bearer, 'infer', call.peer)) await this.keys.authorize(bearer, 'infer', call.peer);
      return fn(call.request, call);
    };
  }

  handlers(): Record<string, Unary<never, unknown>> {
    const h = {
      ServerLive: this.unary(() => ({ live: true })),
      ServerReady: this.unary(async () => ({ ready: (await this.health.readiness()).ready })),
      ModelReady: this.unary((req: { name: string; version: string }) => {
        if (!req.name) throw DomainException.invalid('name is required');
        return { ready: this.inference.modelReady(req.name, req.version || undefined) };
      }),
      ServerMetadata: this.unary(() => this.inference.serverMetadata()),
      ModelMetadata: this.unary((req: { name: string; version: string }) => {
        if (!req.name) throw DomainException.invalid('name is required');
        const m = this.inference.modelMetadata(req.name, req.version || undefined);
        return { name: m.name, versions: m.versions, platform: m.platform, inputs: m.inputs, outputs: m.outputs };
      }),
      ModelInfer: this.unary(async (req: ModelInferRequestWire, call): Promise<ModelInferResponseWire> => {
        if (req.malformed) throw DomainException.invalid(req.malformed);
        // Same admission as REST's onRequest hook (the message has been read already, but a
        // refused retry storm then waits on a timer instead of being decoded).
        const refused = req.model_name ? await this.inference.admit(req.model_name, req.model_version || undefined) : undefined;
        if (refused) throw refused;
        const left = call.deadline === undefined ? undefined : call.deadline - Date.now();
        let decoded;
        try {
          if (left !== undefined && left <= 0) throw new DomainException(ErrorCode.DeadlineExceeded, 'deadline exceeded before the request was queued');
          decoded = decodeGrpcInfer(req, left);
        } catch (e) {
          this.inference.recordRejected(req.model_name || 'unknown', e);
          throw e;
        }
        let result;
        try {
          result = await this.inference.infer(decoded.request);
        } finally {
          // Settled: the batcher copied the tensors (views of the message) when it dispatched
          // them, or dropped them. A pooled message goes back (others are ignored).
          requestBodies.give(call.message.buffer);
        }
        return encodeGrpcInfer(result, decoded.id, decoded.raw);
      }),
    };
    return h as unknown as Record<string, Unary<never, unknown>>;
  }
}
