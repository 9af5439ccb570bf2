import { Injectable, Logger } from '@nestjs/common';
import { DomainException, HealthService } from '@tandem/shared';
import type { GrpcCall, GrpcServerStreamCall } from './grpc-http2.server';
import { grpcErrorReply } from './grpc-status.map';

type ServingStatus = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
type HealthRequest = { service: string };
type HealthResponse = { status: ServingStatus };
const INFERENCE_SERVICE = 'inference.GRPCInferenceService';

/** grpc.health.v1.Health: '' and the inference service are SERVING while the gateway is ready. */
@Injectable()
export class GrpcHealthService {
  private readonly logger = new Logger('GrpcHealth');
  private serving = false;
  private readonly watchers = new Set<GrpcServerStreamCall<HealthRequest, HealthResponse>>();

  constructor(private readonly health: HealthService) {}

  setServing(on: boolean): void {
    this.serving = on;
    if (!on) {
      for (const w of this.watchers) {
        w.write({ status: 'NOT_SERVING' });
        w.end();
      }
      this.watchers.clear();
    }
  }

  private async statusOf(service: string): Promise<ServingStatus | undefined> {
    if (service !== '' && service !== INFERENCE_SERVICE) return undefined;
    if (!this.serving) return 'NOT_SERVING';
    return (await this.health.readiness()).ready ? 'SERVING' : 'NOT_SERVING';
  }

  /** Check: unary; its errors map through the server's status table. */
  async check(call: GrpcCall<HealthRequest>): Promise<HealthResponse> {
    const s = await this.statusOf(call.request.service);
    if (!s) throw DomainException.notFound(`unknown service '${call.request.service}'`);
    return { status: s };
  }

  /** Watch: the current status now, NOT_SERVING when the gateway stops serving. */
  watch(call: GrpcServerStreamCall<HealthRequest, HealthResponse>): void {
    this.statusOf(call.request.service).then(
      (s) => {
        // Serving may have stopped while readiness was checked: the watcher then learns it now.
        call.write({ status: s === undefined ? 'SERVICE_UNKNOWN' : this.serving ? s : 'NOT_SERVING' });
        if (!this.serving) return call.end();
        this.watchers.add(call);
        call.onCancelled(() => this.watchers.delete(call));
      },
      (e: unknown) => call.end(grpcErrorReply(e, this.logger, { method: call.path })),
    );
  }
}
