import { DynamicModule, Module, Provider, Type } from '@nestjs/common';
import { HealthController } from './health.controller';
import { HealthService } from './health.service';
import { READINESS_CHECKS, type ReadinessCheck } from './health.types';

@Module({})
export class HealthModule {
  /** `checks` are providers (from the app's other modules) implementing ReadinessCheck. */
  static register(checks: Type<ReadinessCheck>[], imports: DynamicModule['imports'] = []): DynamicModule {
    const aggregate: Provider = {
      provide: READINESS_CHECKS,
      useFactory: (...instances: ReadinessCheck[]) => instances,
      inject: checks,
    };
    return {
      module: HealthModule,
      imports,
      controllers: [HealthController],
      providers: [HealthService, aggregate],
      exports: [HealthService],
    };
  }
}
