import { DynamicModule, Module } from '@nestjs/common';
import { createRootLogger, HealthModule } from '@tandem/shared';
import { PersistenceModule, PostgresReadiness } from '@tandem/persistence';
import { QueueModule, QueueReadiness } from '@tandem/queue';
import { AuthModule } from '@tandem/auth';
import { SchedulerModule } from '@tandem/scheduler';
import { GATEWAY_CONFIG, type GatewayConfig } from './config/gateway.config';
import { AdminModule } from './admin/admin.module';
import { ADMIN_PANEL_CONTROLLERS, ADMIN_PANEL_PROVIDERS } from './admin-panel/admin-panel.providers';
import { InferenceModule } from './inference/inference.module';
import { ModelsReadiness } from './inference/models.readiness';
import { ApiKeysController } from './auth/api-keys.controller';
import { ModelControlController } from './model-control/model-control.controller';
import { ModelControlService } from './model-control/model-control.service';
import { AutoscalerService } from './autoscaler/autoscaler.service';
import { GrpcHealthService } from './grpc/grpc-health.service';
import { GrpcServerService } from './grpc/grpc-server.service';
import { InferenceGrpcController } from './grpc/inference.grpc.controller';
import { HybridAdminController } from './hybrid/hybrid-admin.controller';
import { BatchCostService } from './hybrid/batch-cost.service';
import { OnlineClaimService } from './hybrid/online-claim.service';

@Module({})
export class GatewayModule {
  static forRoot(cfg: GatewayConfig): DynamicModule {
    const inference = InferenceModule.forRoot({ modelRepository: cfg.modelRepository, ...cfg.inference });
    return {
      module: GatewayModule,
      imports: [
        PersistenceModule.forRoot({ url: cfg.databaseUrl, applicationName: 'tandem-gateway' }),
        QueueModule.forRoot(cfg.queue),
        AuthModule.forRoot(cfg.auth),
        SchedulerModule.forRoot({ options: cfg.scheduler, logger: createRootLogger(cfg.logLevel, 'scheduler') }),
        AdminModule,
        inference,
        HealthModule.register([PostgresReadiness, QueueReadiness, ModelsReadiness], [inference]),
      ],
      controllers: [ApiKeysController, ModelControlController, HybridAdminController, ...ADMIN_PANEL_CONTROLLERS],
      providers: [{ provide: GATEWAY_CONFIG, useValue: cfg }, InferenceGrpcController, GrpcHealthService, GrpcServerService, AutoscalerService, ModelControlService, OnlineClaimService, BatchCostService, ...ADMIN_PANEL_PROVIDERS],
      exports: [GATEWAY_CONFIG],
    };
  }
}
