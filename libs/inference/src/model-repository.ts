import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DomainException } from '@tandem/shared';
import { parseModelConfig, type ModelConfig } from './model-config';

export interface ModelVersionEntry {
  version: string;
  /**
   * Absolute path of the version's model file (symlinks allowed): `<version>/model.onnx`, or for
   * a `node` backend model `<version>/model.ts` (or model.js / model.mjs).
   */
  path: string;
}

/** The file a version directory must hold, per backend; the first one present wins. */
const MODEL_FILES: Readonly<Record<ModelConfig['backend'], readonly string[]>> = {
  onnxruntime: ['model.onnx'],
  node: ['model.ts', 'model.js', 'model.mjs'],
};

export interface ModelEntry {
  name: string;
  config: ModelConfig;
  /** Ascending numeric order; the last one is the default ("latest") version. */
  versions: ModelVersionEntry[];
}

const NAME = /^[A-Za-z0-9_.-]+$/;

/**
 * Triton-style repository on disk: `<root>/<model>/config.json` and
 * `<root>/<model>/<version>/model.onnx` (or `model.ts` for `"backend": "node"`), version
 * directories being positive integers.
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
      if (!NAME.test(name) || !statSync(join(this.root, name)).isDirectory()) continue;
      const entry = this.scan(name);
      if (entry) next.set(name, entry);
    }
    this.models = next;
  }

  /** One model as it is on disk now; undefined when it has no version with a model file. */
  private scan(name: string): ModelEntry | undefined {
    const dir = join(this.root, name);
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
    const versions: ModelVersionEntry[] = [];
    for (const v of readdirSync(dir)
      .filter((x) => /^[1-9][0-9]*$/.test(x))
      .sort((a, b) => Number(a) - Number(b))) {
      const file = MODEL_FILES[config.backend].find((f) => existsSync(join(dir, v, f)));
      if (file) versions.push({ version: v, path: join(dir, v, file) });
    }
    return versions.length > 0 ? { name, config, versions } : undefined;
  }

  /**
   * Re-reads one model from disk without touching the others (the load API). 404 when it is
   * not there, 400 when its config is invalid; nothing changes until `commit`.
   */
  read(name: string): ModelEntry {
    if (!NAME.test(name)) throw DomainException.invalid(`'${name.slice(0, 64)}' is not a valid model name`);
    const dir = join(this.root, name);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw DomainException.notFound(`no model '${name}' in the repository`);
    let entry: ModelEntry | undefined;
    try {
      entry = this.scan(name);
    } catch (e) {
      throw DomainException.invalid(`failed to load model '${name}': ${(e as Error).message}`);
    }
    if (!entry)
      throw DomainException.notFound(`model '${name}' has no version directory with a model file (model.onnx, or model.ts/.js/.mjs for the node backend)`);
    return entry;
  }

  /** Makes a freshly read entry the one requests resolve against. */
  commit(entry: ModelEntry): void {
    this.models.set(entry.name, entry);
  }

  list(): ModelEntry[] {
    return [...this.models.values()];
  }

  /** The model entry, or undefined (no exception: the admission check runs per request). */
  find(name: string): ModelEntry | undefined {
    return this.models.get(name);
  }

  /** The model entry; throws 404-mapped DomainException when absent. */
  get(name: string): ModelEntry {
    const m = this.models.get(name);
    if (!m) throw DomainException.notFound(`unknown model '${name}'`);
    return m;
  }

  /** Whether resolve would find it (without an exception's cost). */
  has(name: string, version?: string): boolean {
    const model = this.models.get(name);
    if (!model) return false;
    return version === undefined || version === '' ? model.versions.length > 0 : model.versions.some((x) => x.version === version);
  }

  /** A version of a model (latest when omitted); throws 404-mapped DomainException when absent. */
  resolve(name: string, version?: string): { model: ModelEntry; version: ModelVersionEntry } {
    const model = this.get(name);
    const v = version === undefined || version === '' ? model.versions.at(-1) : model.versions.find((x) => x.version === version);
    if (!v) throw DomainException.notFound(`unknown version '${version}' of model '${name}'`);
    return { model, version: v };
  }
}
