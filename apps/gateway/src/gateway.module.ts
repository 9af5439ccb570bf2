import { DynamicModule, Module } from '@nestjs/common';
import { HealthModule, MetricsModule, type PinoLogger } from '@tandem/shared';
import { PersistenceModule, PostgresReadiness } from '@tandem/persistence';
import { QueueModule, QueueReadiness } from '@tandem/queue';
import { AuthModule } from '@tandem/auth';
import { SchedulerModule } from '@tandem/scheduler';
import { type GatewayConfig } from './config/gateway.config';
import { GatewayConfigModule } from './config/gateway-config.module';
import { AdminApiModule } from './admin/admin-api.module';
import { AdminPanelModule } from './admin-panel/admin-panel.module';
import { AutoscalerModule } from './autoscaler/autoscaler.module';
import { GrpcModule } from './grpc/grpc.module';
import { HybridModule } from './hybrid/hybrid.module';
import { InferenceModule } from './inference/inference.module';
import { ModelsReadiness } from './inference/models.readiness';
import { ModelControlModule } from './model-control/model-control.module';

/** The gateway: infrastructure modules, then one module per concern. */
@Module({})
export class GatewayModule {
  static forRoot(cfg: GatewayConfig, logger: PinoLogger): DynamicModule {
    const inference = InferenceModule.forRoot({ modelRepository: cfg.modelRepository, ...cfg.inference });
    const health = HealthModule.register([PostgresReadiness, QueueReadiness, ModelsReadiness], [inference]);
    return {
      module: GatewayModule,
      imports: [
        GatewayConfigModule.forRoot(cfg, logger),
        PersistenceModule.forRoot({ url: cfg.databaseUrl, applicationName: 'tandem-gateway' }),
        QueueModule.forRoot(cfg.queue),
        AuthModule.forRoot(cfg.auth),
        SchedulerModule.forRoot({ options: cfg.scheduler, logger: logger.child({ component: 'scheduler' }) }),
        inference,
        GrpcModule.forRoot(health),
        ModelControlModule,
        AutoscalerModule,
        HybridModule,
        AdminApiModule,
        AdminPanelModule,
        health,
        MetricsModule,
      ],
    };
  }
}
