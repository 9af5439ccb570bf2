import { Injectable, Logger } from '@nestjs/common';
import { AuditLogRepository } from '@tandem/persistence';
import { AutoscalerService } from '../autoscaler/autoscaler.service';
import { InferenceService } from '../inference/inference.service';

export interface RepositoryIndexEntry {
  name: string;
  version: string;
  state: 'READY' | 'LOADING' | 'UNAVAILABLE';
  reason: string;
}

/** Triton's model repository extension over the engine: index, load (hot reload), unload. */
@Injectable()
export class ModelControlService {
  private readonly logger = new Logger('ModelControl');
  /** One load/unload per model at a time; a second waits for the first. */
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly inference: InferenceService,
    private readonly autoscaler: AutoscalerService,
    private readonly audit: AuditLogRepository,
  ) {}

  index(readyOnly: boolean): RepositoryIndexEntry[] {
    const all = this.inference.repositoryIndex();
    return readyOnly ? all.filter((e) => e.state === 'READY') : all;
  }

  private serialized<T>(model: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(model) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(model, tail);
    void tail.then(() => this.locks.get(model) === tail && this.locks.delete(model));
    return run;
  }

  load(model: string, actor: string): Promise<void> {
    return this.serialized(model, async () => {
      try {
        await this.inference.reloadModel(model);
      } catch (e) {
        await this.audit
          .record({ actor, action: 'model.load_failed', target: `model:${model}`, details: { error: (e as Error).message } })
          .catch(() => undefined);
        throw e;
      }
      for (const version of this.inference.loadedVersions(model)) this.autoscaler.reset(model, version);
      this.inference.refreshReplicaGauge();
      await this.audit.record({ actor, action: 'model.load', target: `model:${model}` });
      this.logger.log(`model ${model} loaded`);
    });
  }

  unload(model: string, actor: string): Promise<void> {
    return this.serialized(model, async () => {
      await this.inference.unloadModel(model);
      this.inference.refreshReplicaGauge();
      await this.audit.record({ actor, action: 'model.unload', target: `model:${model}` });
      this.logger.log(`model ${model} unloaded`);
    });
  }
}
