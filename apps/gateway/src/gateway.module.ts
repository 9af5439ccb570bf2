import { DynamicModule, Module } from '@nestjs/common';
import { HealthModule } from '@tandem/shared';
import { PersistenceModule, PostgresReadiness } from '@tandem/persistence';
import { QueueModule, QueueReadiness } from '@tandem/queue';
import { GATEWAY_CONFIG, type GatewayConfig } from './config/gateway.config';

@Module({})
export class GatewayModule {
  static forRoot(cfg: GatewayConfig): DynamicModule {
    return {
      module: GatewayModule,
      imports: [
        PersistenceModule.forRoot({ url: cfg.databaseUrl, applicationName: 'tandem-gateway' }),
        QueueModule.forRoot(cfg.queue),
        HealthModule.register([PostgresReadiness, QueueReadiness]),
      ],
      providers: [{ provide: GATEWAY_CONFIG, useValue: cfg }],
      exports: [GATEWAY_CONFIG],
    };
  }
}
