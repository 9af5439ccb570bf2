import { Injectable } from '@nestjs/common';
import type { ReadinessCheck } from '@tandem/shared';
import { InferenceService } from './inference.service';

/** The gateway is ready only when every model version in the repository is loaded. */
@Injectable()
export class ModelsReadiness implements ReadinessCheck {
  readonly name = 'models';

  constructor(private readonly inference: InferenceService) {}

  async check(): Promise<void> {
    const bad = this.inference.notReady();
    if (bad.length > 0) throw new Error(bad.join(', '));
  }
}
