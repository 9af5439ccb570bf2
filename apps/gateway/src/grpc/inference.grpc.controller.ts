import { Injectable, Logger } from '@nestjs/common';
import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { ApiKeyService, bearerToken } from '@tandem/auth';
import { DomainException, ErrorCode, HealthService } from '@tandem/shared';
import { InferenceService } from '../inference/inference.service';
import { decodeGrpcInfer, encodeGrpcInfer } from './grpc-tensor.codec';
import { peerAddress } from './grpc-peer';
import { grpcErrorReply } from './grpc-status.map';
import type { ModelInferRequestWire, ModelInferResponseWire } from './grpc-wire.types';

type Unary<Req, Res> = (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => void;

/** Milliseconds left before the client's deadline; undefined when it set none. */
function deadlineMs(call: ServerUnaryCall<unknown, unknown>): number | undefined {
  const d = call.getDeadline();
  const at = d instanceof Date ? d.getTime() : d;
  if (!Number.isFinite(at)) return undefined;
  return at - Date.now();
}

/**
 * inference.GRPCInferenceService: a thin adapter over the same InferenceService as REST.
 * Errors map through the one gRPC status table; client deadlines bound the queue wait.
 */
@Injectable()
export class InferenceGrpcController {
  private readonly logger = new Logger('InferenceGrpc');

  constructor(
    private readonly inference: InferenceService,
    private readonly health: HealthService,
    private readonly keys: ApiKeyService,
  ) {}

  private unary<Req, Res>(fn: (req: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res> | Res): Unary<Req, Res> {
    return (call, cb) => {
      // gRPC carries the key in `authorization` metadata, same form as the HTTP header; the
      // same service as REST applies the per-key and per-address limits (same buckets).
      const auth = call.metadata.get('authorization')[0];
      this.keys
        .authorize(bearerToken(typeof auth === 'string' ? auth : auth?.toString()), 'infer', peerAddress(call.getPeer()))
        .then(() => fn(call.request, call))
        .then(
          (res) => cb(null, res),
          // Rate limits: RESOURCE_EXHAUSTED with the wait in `retry-after`; unexpected errors: INTERNAL with an `error-id`.
          (e: unknown) => cb(grpcErrorReply(e, this.logger, { method: call.getPath() })),
        );
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
        // Same admission as REST's onRequest hook (grpc-js has read the message already, but a
        // refused retry storm then waits on a timer instead of being decoded).
        const refused = req.model_name ? await this.inference.admit(req.model_name, req.model_version || undefined) : undefined;
        if (refused) throw refused;
        const left = deadlineMs(call);
        let decoded;
        try {
          if (left !== undefined && left <= 0) throw new DomainException(ErrorCode.DeadlineExceeded, 'deadline exceeded before the request was queued');
          decoded = decodeGrpcInfer(req, left);
        } catch (e) {
          this.inference.recordRejected(req.model_name || 'unknown', e);
          throw e;
        }
        const result = await this.inference.infer(decoded.request);
        return encodeGrpcInfer(result, decoded.id, decoded.raw);
      }),
    };
    return h as unknown as Record<string, Unary<never, unknown>>;
  }
}
