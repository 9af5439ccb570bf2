import { Inject, Injectable } from '@nestjs/common';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';
import type { BatchTask } from './batch-task';
import { scoreTask } from './score.task';
import { testProbeTask } from './test-probe.task';
import { INFER_TASK, type InferTaskProvider } from './infer.task';

/** The registered TypeScript tasks, by name. */
@Injectable()
export class TaskRegistry {
  private readonly tasks = new Map<string, BatchTask>();

  constructor(@Inject(BATCH_CONFIG) cfg: BatchConfig, @Inject(INFER_TASK) infer: InferTaskProvider) {
    this.tasks.set(scoreTask.name, scoreTask);
    this.tasks.set('infer', infer);
    // Failure injection exists only when explicitly enabled (tests); production never registers it.
    if (cfg.jobs.enableTestTasks) this.tasks.set(testProbeTask.name, testProbeTask);
  }

  find(name: string): BatchTask | undefined {
    return this.tasks.get(name);
  }

  names(): string[] {
    return [...this.tasks.keys()];
  }
}
