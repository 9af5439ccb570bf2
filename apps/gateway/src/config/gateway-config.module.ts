import { DynamicModule, Module } from '@nestjs/common';
import { ROOT_LOGGER, type PinoLogger } from '@tandem/shared';
import { GATEWAY_CONFIG, type GatewayConfig } from './gateway.config';

/** The validated config and the process's root logger, for every gateway module. */
@Module({})
export class GatewayConfigModule {
  static forRoot(cfg: GatewayConfig, logger: PinoLogger): DynamicModule {
    return {
      module: GatewayConfigModule,
      global: true,
      providers: [
        { provide: GATEWAY_CONFIG, useValue: cfg },
        { provide: ROOT_LOGGER, useValue: logger },
      ],
      exports: [GATEWAY_CONFIG, ROOT_LOGGER],
    };
  }
}
