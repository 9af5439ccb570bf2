import { describe, expect, it } from 'vitest';
import { loadBatchConfig } from '../config/batch.config';
import { InferTask } from './infer.task';
import { BatchCapacity, silentLogger } from '@tandem/scheduler';
import { TaskRegistry } from './task.registry';

const fixed = (): BatchCapacity =>
  new BatchCapacity({ mode: 'fixed', deviceKind: 'cpu', maxUnits: 1, borrowHoldDownMs: 0, retryMs: 10, idleReleaseMs: 10, gpuMemoryMiB: 0 }, silentLogger, null);

describe('task registry', () => {
  it('ships score and infer; the failure-injection task exists only when explicitly enabled', () => {
    const prod = loadBatchConfig({});
    expect(prod.jobs.enableTestTasks).toBe(false);
    const registry = new TaskRegistry(prod, new InferTask(prod, fixed()));
    expect(registry.names().sort()).toEqual(['infer', 'score']);
    expect(registry.find('test-probe')).toBeUndefined();

    const test = loadBatchConfig({ BATCH_ENABLE_TEST_TASKS: 'true' });
    expect(new TaskRegistry(test, new InferTask(test, fixed())).find('test-probe')?.name).toBe('test-probe');
  });

  it('score squares exactly, switching to decimal strings past 2^53', async () => {
    const score = new TaskRegistry(loadBatchConfig({}), new InferTask(loadBatchConfig({}), fixed())).find('score')!;
    expect(score.validateItem(1.5, null)).toMatch(/integer/);
    expect(score.validateItem(2 ** 53, null)).toMatch(/integer/);
    const out = await score.run([3, -4, 3_037_000_499], { batchId: 'b', chunk: 0, attempt: 1, signal: new AbortController().signal, model: null, priority: 50, mayBorrow: true });
    expect(out).toEqual([9, 16, '9223372030926249001']);
  });
});
