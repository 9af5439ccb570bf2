import { DynamicModule, Module } from '@nestjs/common';
import { InferenceBodyParsers } from './inference-body.parsers';
import { INFERENCE_OPTIONS, InferenceService, type InferenceOptions } from './inference.service';
import { ModelsReadiness } from './models.readiness';
import { OipController } from './oip.controller';

/**
 * OIP v2 REST, the model engine behind it, and the "models loaded" readiness check. Global: the
 * gRPC adapter, model control, the autoscaler, co-location and the admin API all serve over the
 * one InferenceService.
 */
@Module({})
export class InferenceModule {
  static forRoot(opts: InferenceOptions): DynamicModule {
    return {
      module: InferenceModule,
      global: true,
      controllers: [OipController],
      providers: [{ provide: INFERENCE_OPTIONS, useValue: opts }, InferenceService, ModelsReadiness, InferenceBodyParsers],
      exports: [InferenceService, ModelsReadiness],
    };
  }
}
