import { DynamicModule, Module } from '@nestjs/common';
import { GrpcHealthService } from './grpc-health.service';
import { GrpcServerService } from './grpc-server.service';
import { InferenceGrpcController } from './inference.grpc.controller';

/** OIP over gRPC and grpc.health.v1 on their own port. */
@Module({})
export class GrpcModule {
  /** `health`: the app's HealthModule instance (readiness is shared with REST). */
  static forRoot(health: DynamicModule): DynamicModule {
    return { module: GrpcModule, imports: [health], providers: [InferenceGrpcController, GrpcHealthService, GrpcServerService] };
  }
}
