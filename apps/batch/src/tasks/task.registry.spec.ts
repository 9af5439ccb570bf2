import { describe, expect, it } from 'vitest';
import { loadBatchConfig } from '../config/batch.config';
import { InferTask } from './infer.task';
import { TaskRegistry } from './task.registry';

describe('task registry', () => {
  it('ships score and infer; the failure-injection task exists only when explicitly enabled', () => {
    const prod = loadBatchConfig({});
    expect(prod.jobs.enableTestTasks).toBe(false);
    const registry = new TaskRegistry(prod, new InferTask(prod));
    expect(registry.names().sort()).toEqual(['infer', 'score']);
    expect(registry.find('test-probe')).toBeUndefined();

    const test = loadBatchConfig({ BATCH_ENABLE_TEST_TASKS: 'true' });
    expect(new TaskRegistry(test, new InferTask(test)).find('test-probe')?.name).toBe('test-probe');
  });

  it('score squares exactly, switching to decimal strings past 2^53', async () => {
    const score = new TaskRegistry(loadBatchConfig({}), new InferTask(loadBatchConfig({}))).find('score')!;
    expect(score.validateItem(1.5, null)).toMatch(/integer/);
    expect(score.validateItem(2 ** 53, null)).toMatch(/integer/);
    const out = await score.run([3, -4, 3_037_000_499], { batchId: 'b', chunk: 0, attempt: 1, signal: new AbortController().signal, model: null });
    expect(out).toEqual([9, 16, '9223372030926249001']);
  });
});
