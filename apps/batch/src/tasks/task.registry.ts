import { Inject, Injectable } from '@nestjs/common';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';
import { USER_CODE, type UserCode } from '../user-tasks/user-code';
import type { BatchTask } from './batch-task';
import { testProbeTask } from './test-probe.task';
import { INFER_TASK, type InferTaskProvider } from './infer.task';

/** Tasks compiled into the app; user tasks (BATCH_TASKS_DIR) may not take these names. */
export const BUILT_IN_TASK_NAMES: readonly string[] = ['infer', testProbeTask.name];

/** The registered tasks by name: `infer`, the user's from BATCH_TASKS_DIR, and test-probe in tests. */
@Injectable()
export class TaskRegistry {
  private readonly tasks = new Map<string, BatchTask>();
  private readonly failed: ReadonlyMap<string, string>;

  constructor(@Inject(BATCH_CONFIG) cfg: BatchConfig, @Inject(INFER_TASK) infer: InferTaskProvider, @Inject(USER_CODE) user: UserCode) {
    this.tasks.set('infer', infer);
    // Failure injection exists only when explicitly enabled (tests); production never registers it.
    if (cfg.jobs.enableTestTasks) this.tasks.set(testProbeTask.name, testProbeTask);
    // The loader refused user tasks named like a built-in, so nothing is overwritten here.
    for (const [name, task] of user.tasks) this.tasks.set(name, task);
    this.failed = user.failedTasks;
  }

  find(name: string): BatchTask | undefined {
    return this.tasks.get(name);
  }

  names(): string[] {
    return [...this.tasks.keys()].sort();
  }

  /** Why `name` is not a usable task: a user file that failed to load, or no such task. */
  whyMissing(name: string): string {
    const failed = this.failed.get(name);
    if (failed !== undefined) return `task "${name}" failed to load: ${failed}`;
    return `unknown task "${name}" (registered: ${this.names().join(', ')})`;
  }
}
