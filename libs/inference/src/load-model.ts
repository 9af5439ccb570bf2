import type { DevicePlacement, SessionFactory } from './session-factory';
import { ModelRepository } from './model-repository';
import { ModelRunner } from './model-runner';

/**
 * One-call entry for batch workers: open `name` (latest version unless given) from a
 * repository as a ModelRunner, then `runner.run(inputs)` with already-batched tensors.
 */
export async function loadModelRunner(
  repository: ModelRepository | string,
  name: string,
  opts: { version?: string; placement?: DevicePlacement; sessionFactory?: SessionFactory } = {},
): Promise<ModelRunner> {
  const repo = typeof repository === 'string' ? new ModelRepository(repository) : repository;
  const { model, version } = repo.resolve(name, opts.version);
  return ModelRunner.load(version.path, model.config, opts.placement, opts.sessionFactory);
}
