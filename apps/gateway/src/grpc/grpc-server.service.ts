import { resolve } from 'node:path';
import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { loadSync, type MethodDefinition } from '@grpc/proto-loader';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway.config';
import { GrpcHealthService } from './grpc-health.service';
import { frameWith, GrpcHttp2Server } from './grpc-http2.server';
import { decodeModelInferRequest, rawContentsOffset } from './grpc-infer.decode';
import { requestBodies } from '../inference/body-pool';
import { encodeModelInferResponse } from './grpc-infer.encode';
import { framePrefixed } from './grpc-message.reader';
import { grpcErrorReply } from './grpc-status.map';
import type { ModelInferResponseWire } from './grpc-wire.types';
import { InferenceGrpcController } from './inference.grpc.controller';

/** proto-loader options shared by the server and the tests' generated clients. */
export const PROTO_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true } as const;
export const PROTO_DIR = resolve(__dirname, 'proto');

type Methods = Record<string, MethodDefinition<unknown, unknown>>;

/**
 * A ModelInfer message's buffer: from the pool REST bodies use (the controller gives it back
 * once the inference settled), placed so the first raw_input_contents starts 8-byte aligned.
 */
function modelInferBody(len: number, head: Buffer): Buffer {
  const at = rawContentsOffset(head.subarray(0, len));
  const shift = at < 0 ? 0 : (8 - (at % 8)) % 8;
  return Buffer.from(requestBodies.take(len + shift), shift, len);
}

/**
 * Owns the gRPC socket (GrpcHttp2Server on node:http2). On shutdown it reports NOT_SERVING, stops
 * taking calls and waits for in-flight ones (they finish because the inference engine closes
 * only afterwards).
 */
@Injectable()
export class GrpcServerService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('GrpcServer');
  private server?: GrpcHttp2Server;
  private boundPort = 0;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly cfg: GatewayConfig,
    private readonly inference: InferenceGrpcController,
    private readonly health: GrpcHealthService,
  ) {}

  get port(): number {
    return this.boundPort;
  }

  async onApplicationBootstrap(): Promise<void> {
    const defs = loadSync([resolve(PROTO_DIR, 'grpc_service.proto'), resolve(PROTO_DIR, 'health.proto')], PROTO_OPTIONS);
    const server = new GrpcHttp2Server({
      maxMessageBytes: this.cfg.grpcMaxMessageBytes,
      // Rate limits: RESOURCE_EXHAUSTED with the wait in `retry-after`; unexpected errors: INTERNAL with an `error-id`.
      errorReply: (e, path) => grpcErrorReply(e, this.logger, { method: path }),
    });
    const inference = defs['inference.GRPCInferenceService'] as Methods;
    for (const [name, handler] of Object.entries(this.inference.handlers())) {
      const def = inference[name]!;
      // ModelInfer's messages go through the hand-written codec (tensor bytes stay views, no object conversion).
      const infer = name === 'ModelInfer';
      server.add({
        path: def.path,
        requestDeserialize: infer ? decodeModelInferRequest : def.requestDeserialize,
        responseFrame: infer ? (res) => framePrefixed(encodeModelInferResponse(res as ModelInferResponseWire, 5)) : frameWith(def.responseSerialize),
        allocate: infer ? modelInferBody : undefined,
        guard: (headers, peer) => this.inference.authorize(headers, peer),
        admitHead: infer ? (head, hold) => this.inference.admitHead(head, hold) : undefined,
        unary: handler as (call: unknown) => Promise<unknown>,
      });
    }
    const health = defs['grpc.health.v1.Health'] as Methods;
    server.add({ ...this.codec(health.Check!), unary: (call) => this.health.check(call as never) });
    server.add({ ...this.codec(health.Watch!), serverStream: (call) => this.health.watch(call as never) });
    this.boundPort = await server.listen(this.cfg.host, this.cfg.grpcPort);
    this.server = server;
    this.health.setServing(true);
    this.logger.log(`gateway gRPC listening on ${this.cfg.host}:${this.boundPort}`);
  }

  private codec(def: MethodDefinition<unknown, unknown>) {
    return { path: def.path, requestDeserialize: def.requestDeserialize, responseFrame: frameWith(def.responseSerialize) };
  }

  async beforeApplicationShutdown(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.health.setServing(false);
    await server.shutdown(this.cfg.shutdownGraceMs);
  }
}
