import { resolve } from 'node:path';
import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { loadPackageDefinition, Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway.config';
import { GrpcHealthService } from './grpc-health.service';
import { decodeModelInferRequest } from './grpc-infer.decode';
import { encodeModelInferResponse } from './grpc-infer.encode';
import { InferenceGrpcController } from './inference.grpc.controller';

/** proto-loader options shared by the server and the tests' generated clients. */
export const PROTO_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true } as const;
export const PROTO_DIR = resolve(__dirname, 'proto');

type Pkg = Record<string, unknown>;
function serviceOf(pkg: Pkg, path: string[]): ServiceDefinition {
  let node: unknown = pkg;
  for (const p of path) node = (node as Pkg)[p];
  return (node as { service: ServiceDefinition }).service;
}

/**
 * Owns the gRPC socket. On shutdown it reports NOT_SERVING, stops taking calls and waits for
 * in-flight ones (they finish because the inference engine closes only afterwards).
 */
@Injectable()
export class GrpcServerService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('GrpcServer');
  private server?: Server;
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
    const pkg = loadPackageDefinition(defs) as unknown as Pkg;
    const server = new Server({
      'grpc.max_receive_message_length': this.cfg.grpcMaxMessageBytes,
      'grpc.max_send_message_length': this.cfg.grpcMaxMessageBytes,
      // Nothing reads channelz here; its per-call bookkeeping (call and message counters, per
      // session trackers) was ~4 % of a small ModelInfer's main thread (docs/benchmarks.md).
      'grpc.enable_channelz': 0,
    });
    const inference = serviceOf(pkg, ['inference', 'GRPCInferenceService']);
    // ModelInfer's messages go through the hand-written codec (tensor bytes stay views, no object conversion).
    const infer = { ...inference.ModelInfer!, requestDeserialize: decodeModelInferRequest, responseSerialize: encodeModelInferResponse };
    server.addService({ ...inference, ModelInfer: infer } as ServiceDefinition, this.inference.handlers() as UntypedServiceImplementation);
    server.addService(serviceOf(pkg, ['grpc', 'health', 'v1', 'Health']), this.health.handlers() as UntypedServiceImplementation);
    this.boundPort = await new Promise<number>((ok, fail) =>
      server.bindAsync(`${this.cfg.host}:${this.cfg.grpcPort}`, ServerCredentials.createInsecure(), (err, port) => (err ? fail(err) : ok(port))),
    );
    this.server = server;
    this.health.setServing(true);
    this.logger.log(`gateway gRPC listening on ${this.cfg.host}:${this.boundPort}`);
  }

  async beforeApplicationShutdown(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.health.setServing(false);
    await new Promise<void>((done) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        done();
      }, this.cfg.shutdownGraceMs);
      server.tryShutdown(() => {
        clearTimeout(timer);
        done();
      });
    });
  }
}
