import { Module } from '@nestjs/common';
import { AutoscalerService } from './autoscaler.service';

/** Replica autoscaling over the global InferenceService. */
@Module({ providers: [AutoscalerService], exports: [AutoscalerService] })
export class AutoscalerModule {}
