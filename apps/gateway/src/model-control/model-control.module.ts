import { Module } from '@nestjs/common';
import { AutoscalerModule } from '../autoscaler/autoscaler.module';
import { ModelControlController } from './model-control.controller';
import { ModelControlService } from './model-control.service';

/** `/v2/repository/…`: Triton's model repository extension (index, load, unload). */
@Module({ imports: [AutoscalerModule], controllers: [ModelControlController], providers: [ModelControlService] })
export class ModelControlModule {}
