import { compileUserModule, tandemModulePaths, type CompiledModule } from '@tandem/shared';
import type { ModelRepository } from '../model-repository';
import { nodeSignature } from '../node-backend/node-model.backend';
import { sessionOptionsFor, type DevicePlacement } from '../session-factory';
import type { UnitModelSpec } from './unit.wire';

/** `ownProcess`: the asking unit is a process started for its placement alone (a GPU unit: CUDA ordinal 0 there). */
export type UnitModelResolver = (
  model: string,
  version: string | undefined,
  placement: DevicePlacement,
  opts?: { ownProcess?: boolean },
) => Promise<UnitModelSpec>;

/**
 * Resolves the names a batch unit opens (its model, and what node models call) against the
 * repository. A node model's file is compiled once per path, here, and its code shipped to
 * every unit that opens it; sessions are pinned to the asking unit's placement.
 */
export function repositoryUnitResolver(repo: ModelRepository): UnitModelResolver {
  const compiled = new Map<string, Promise<CompiledModule>>();
  return async (model, version, placement, opts = {}) => {
    const { model: entry, version: v } = repo.resolve(model, version);
    const { config } = entry;
    // No spinning: a unit shares its core with nothing of its own, and spinning would burn a borrowed share.
    const sessionOptions = sessionOptionsFor(placement, { allowSpinning: false, memoryArena: config.device.memory_arena, ownProcess: opts.ownProcess });
    const base = { name: entry.name, version: v.version, path: v.path, config, sessionOptions };
    if (config.backend !== 'node') return { backend: 'onnxruntime', ...base };
    let code = compiled.get(v.path);
    if (!code) {
      code = compileUserModule(v.path);
      compiled.set(v.path, code);
      code.catch(() => compiled.delete(v.path));
    }
    return { backend: 'node', ...base, signature: nodeSignature(config), module: await code, modulePaths: tandemModulePaths() };
  };
}
