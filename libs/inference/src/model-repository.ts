import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DomainException } from '@tandem/shared';
import { parseModelConfig, type ModelConfig } from './model-config';

export interface ModelVersionEntry {
  version: string;
  /** Absolute path of `<repo>/<model>/<version>/model.onnx` (symlinks allowed). */
  path: string;
}

export interface ModelEntry {
  name: string;
  config: ModelConfig;
  /** Ascending numeric order; the last one is the default ("latest") version. */
  versions: ModelVersionEntry[];
}

const NAME = /^[A-Za-z0-9_.-]+$/;

/**
 * Triton-style repository on disk: `<root>/<model>/config.json` and
 * `<root>/<model>/<version>/model.onnx`, version directories being positive integers.
 * Scanned once at construction (`rescan()` re-reads, e.g. for a later load/unload API).
 */
export class ModelRepository {
  readonly root: string;
  private models = new Map<string, ModelEntry>();

  constructor(root: string) {
    this.root = resolve(root);
    this.rescan();
  }

  rescan(): void {
    if (!existsSync(this.root) || !statSync(this.root).isDirectory()) {
      throw new Error(`model repository ${this.root} is not a directory`);
    }
    const next = new Map<string, ModelEntry>();
    for (const name of readdirSync(this.root).sort()) {
      const dir = join(this.root, name);
      if (!NAME.test(name) || !statSync(dir).isDirectory()) continue;
      const cfgPath = join(dir, 'config.json');
      let raw: unknown = {};
      if (existsSync(cfgPath)) {
        try {
          raw = JSON.parse(readFileSync(cfgPath, 'utf8'));
        } catch (e) {
          throw new Error(`model ${name}: config.json is not valid JSON: ${(e as Error).message}`);
        }
      }
      const config = parseModelConfig(raw, cfgPath);
      const versions = readdirSync(dir)
        .filter((v) => /^[1-9][0-9]*$/.test(v) && existsSync(join(dir, v, 'model.onnx')))
        .sort((a, b) => Number(a) - Number(b))
        .map((v) => ({ version: v, path: join(dir, v, 'model.onnx') }));
      if (versions.length > 0) next.set(name, { name, config, versions });
    }
    this.models = next;
  }

  list(): ModelEntry[] {
    return [...this.models.values()];
  }

  /** The model entry; throws 404-mapped DomainException when absent. */
  get(name: string): ModelEntry {
    const m = this.models.get(name);
    if (!m) throw DomainException.notFound(`unknown model '${name}'`);
    return m;
  }

  /** A version of a model (latest when omitted); throws 404-mapped DomainException when absent. */
  resolve(name: string, version?: string): { model: ModelEntry; version: ModelVersionEntry } {
    const model = this.get(name);
    const v = version === undefined || version === '' ? model.versions.at(-1) : model.versions.find((x) => x.version === version);
    if (!v) throw DomainException.notFound(`unknown version '${version}' of model '${name}'`);
    return { model, version: v };
  }
}
