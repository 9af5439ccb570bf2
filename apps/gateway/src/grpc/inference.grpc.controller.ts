import type { IncomingHttpHeaders } from 'node:http2';
import { Injectable } from '@nestjs/common';
import { ApiKeyService, bearerToken } from '@tandem/auth';
import { DomainException, ErrorCode, HealthService } from '@tandem/shared';
import type { AdmissionHold } from '@tandem/inference';
import { requestBodies } from '../inference/body-pool';
import { InferenceService } from '../inference/inference.service';
import { modelOfHead } from './grpc-infer.decode';
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

  /**
   * Before any message byte is read (the transport's guard, as REST's auth hook): the key in the
   * `authorization` metadata, same form as the HTTP header, through the same service as REST
   * (same per-key and per-address buckets). Synchronous for a key verified within the cache's lifetime.
   */
  authorize(headers: IncomingHttpHeaders, peer: string): void | Promise<void> {
    const bearer = bearerToken(headers.authorization);
    if (!this.keys.authorizeNow(bearer, 'infer', peer)) return this.keys.authorize(bearer, 'infer', peer).then(() => undefined);
  }

  /**
   * ModelInfer's admission on the first DATA chunk (REST decides it before the body too): a
   * refusal ends the call and the rest of the upload is not read. false: the chunk did not hold
   * model_name and model_version, and the handler admits after decoding.
   */
  admitHead(chunk: Buffer, hold: AdmissionHold): boolean | Promise<boolean> {
    if (chunk.length < 5 || chunk[0] !== 0) return false; // a compressed message is read whole first
    const end = 5 + chunk.readUInt32BE(1);
    const m = modelOfHead(chunk.subarray(5, end), chunk.length >= end);
    if (!m) return false;
    const r = this.inference.admit(m.model, m.version || undefined, hold);
    if (r === undefined) return true;
    if (!(r instanceof Promise)) throw r;
    return r.then((e) => {
      if (e) throw e;
      return true;
    });
  }

  /** Errors reject; the server maps them through the one gRPC status table (grpc-server.service.ts). */
  private unary<Req, Res>(fn: (req: Req, call: GrpcCall<Req>) => Promise<Res> | Res): Unary<Req, Res> {
    return async (call) => fn(call.request, call);
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
        // Admitted on the message's first bytes (admitHead) unless they did not name the model.
        const refused = !call.prechecked && req.model_name ? await this.inference.admit(req.model_name, req.model_version || undefined) : undefined;
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
