import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BatchCapacity, silentLogger } from '@tandem/scheduler';
import { loadBatchConfig } from '../config/batch.config';
import { BUILT_IN_REDUCER_NAMES } from '../reducers/built-in.reducers';
import { loadUserCode } from '../user-tasks/user-code.loader';
import { NO_USER_CODE, type UserCode } from '../user-tasks/user-code';
import { InferTask } from './infer.task';
import type { TaskContext } from './batch-task';
import { BUILT_IN_TASK_NAMES, TaskRegistry } from './task.registry';

const fixed = (): BatchCapacity =>
  new BatchCapacity(
    { mode: 'fixed', deviceKind: 'cpu', maxUnits: 1, borrowHoldDownMs: 0, retryMs: 10, idleReleaseMs: 10, gpuMemoryMiB: 0 },
    silentLogger,
    null,
  );

const quiet = { info: () => undefined, error: () => undefined };

/** The project's own tasks/ folder, as the app loads it by default. */
const shipped = (): Promise<UserCode> =>
  loadUserCode({
    dir: resolve(__dirname, '../../../../tasks'),
    required: true,
    builtIn: { tasks: BUILT_IN_TASK_NAMES, reducers: BUILT_IN_REDUCER_NAMES },
    log: quiet,
  });

const ctx = (): TaskContext => ({
  batchId: 'b',
  chunk: 0,
  attempt: 1,
  signal: new AbortController().signal,
  model: null,
  priority: 50,
  mayBorrow: true,
  log: { debug() {}, info() {}, warn() {}, error() {} },
});

describe('task registry', () => {
  it('ships score (tasks/score.ts) and infer; the failure-injection task exists only when explicitly enabled', async () => {
    const prod = loadBatchConfig({});
    expect(prod.jobs.enableTestTasks).toBe(false);
    expect(prod.tasks).toEqual({ dir: resolve('tasks'), required: false });
    const registry = new TaskRegistry(prod, new InferTask(prod, fixed()), await shipped());
    expect(registry.names()).toEqual(['infer', 'score']);
    expect(registry.find('test-probe')).toBeUndefined();

    const test = loadBatchConfig({ BATCH_ENABLE_TEST_TASKS: 'true' });
    expect(new TaskRegistry(test, new InferTask(test, fixed()), NO_USER_CODE).find('test-probe')?.name).toBe('test-probe');
  });

  it('score squares exactly, switching to decimal strings past 2^53', async () => {
    const cfg = loadBatchConfig({});
    const score = new TaskRegistry(cfg, new InferTask(cfg, fixed()), await shipped()).find('score')!;
    expect(score.needsModel).toBe(false);
    expect(score.validateItem(1.5, null)).toMatch(/integer/);
    expect(score.validateItem(2 ** 53, null)).toMatch(/integer/);
    expect(score.validateItem(-(2 ** 53 - 1), null)).toBeNull();
    const out = await score.run([3, -4, 3_037_000_499], ctx());
    expect(out).toEqual([9, 16, '9223372030926249001']);
  });

  it('names what is registered, and why a task that failed to load is missing', () => {
    const cfg = loadBatchConfig({});
    const user: UserCode = { ...NO_USER_CODE, failedTasks: new Map([['broken', 'broken.ts: threw while loading: boom']]) };
    const registry = new TaskRegistry(cfg, new InferTask(cfg, fixed()), user);
    expect(registry.whyMissing('nope')).toBe('unknown task "nope" (registered: infer)');
    expect(registry.whyMissing('broken')).toBe('task "broken" failed to load: broken.ts: threw while loading: boom');
  });
});
