import { DynamicModule, Module } from '@nestjs/common';
import { InferenceBodyParsers } from './inference-body.parsers';
import { INFERENCE_OPTIONS, InferenceService, type InferenceOptions } from './inference.service';
import { MetricsController } from './metrics.controller';
import { ModelsReadiness } from './models.readiness';
import { OipController } from './oip.controller';

/** OIP v2 REST, the model engine behind it, /metrics, and the "models loaded" readiness check. */
@Module({})
export class InferenceModule {
  static forRoot(opts: InferenceOptions): DynamicModule {
    return {
      module: InferenceModule,
      controllers: [OipController, MetricsController],
      providers: [{ provide: INFERENCE_OPTIONS, useValue: opts }, InferenceService, ModelsReadiness, InferenceBodyParsers],
      exports: [InferenceService, ModelsReadiness],
    };
  }
}
