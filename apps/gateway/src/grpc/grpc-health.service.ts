import { Injectable, Logger } from '@nestjs/common';
import { status, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream } from '@grpc/grpc-js';
import { HealthService } from '@tandem/shared';
import { grpcErrorReply } from './grpc-status.map';

type ServingStatus = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
const INFERENCE_SERVICE = 'inference.GRPCInferenceService';

/** grpc.health.v1.Health: '' and the inference service are SERVING while the gateway is ready. */
@Injectable()
export class GrpcHealthService {
  private readonly logger = new Logger('GrpcHealth');
  private serving = false;
  private readonly watchers = new Set<ServerWritableStream<{ service: string }, { status: ServingStatus }>>();

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

  handlers(): Record<string, unknown> {
    return {
      Check: (call: ServerUnaryCall<{ service: string }, unknown>, cb: sendUnaryData<{ status: ServingStatus }>) => {
        this.statusOf(call.request.service).then(
          (s) => (s ? cb(null, { status: s }) : cb({ code: status.NOT_FOUND, details: `unknown service '${call.request.service}'` })),
          (e: unknown) => cb(grpcErrorReply(e, this.logger, { method: call.getPath() })),
        );
      },
      Watch: (call: ServerWritableStream<{ service: string }, { status: ServingStatus }>) => {
        this.statusOf(call.request.service).then(
          (s) => {
            call.write({ status: s ?? 'SERVICE_UNKNOWN' });
            if (!this.serving) return call.end();
            this.watchers.add(call);
            call.on('cancelled', () => this.watchers.delete(call));
          },
          // grpc-js ends a server stream that emits 'error' with that status.
          (e: unknown) => call.emit('error', grpcErrorReply(e, this.logger, { method: call.getPath() })),
        );
      },
    };
  }
}
