import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const SHIPPED = resolve(process.cwd(), 'models');

export interface TempRepo {
  dir: string;
  remove(): void;
}

type Config = Record<string, unknown>;
type Spec = { name: string } & Record<string, unknown>;

/** `over`'s tensor specs laid over `base`'s by name (a node model's signature lives in its config). */
function layerSpecs(base: unknown, over: unknown): Spec[] | undefined {
  if (!Array.isArray(over)) return base as Spec[] | undefined;
  const b = (base ?? []) as Spec[];
  return (over as Spec[]).map((o) => ({ ...b.find((x) => x.name === o.name), ...o }));
}

/**
 * A throw-away model repository: shipped models under their own names, or under new names
 * with another config.json (e.g. a tiny queue to force overload). A shipped node model (the
 * scorer) keeps its backend and declared signature under the given config, which may narrow them.
 */
export function tempModelRepo(models: Record<string, { from: 'scorer' | 'ppocr_cls'; config: Config }>): TempRepo {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-models-'));
  for (const [name, m] of Object.entries(models)) {
    const src = join(SHIPPED, m.from, '1');
    mkdirSync(join(dir, name, '1'), { recursive: true });
    for (const f of readdirSync(src)) copyFileSync(realpathSync(join(src, f)), join(dir, name, '1', f));
    const shipped = JSON.parse(readFileSync(join(SHIPPED, m.from, 'config.json'), 'utf8')) as Config;
    const config =
      shipped.backend === 'node'
        ? { ...shipped, ...m.config, inputs: layerSpecs(shipped.inputs, m.config.inputs), outputs: layerSpecs(shipped.outputs, m.config.outputs) }
        : m.config;
    writeFileSync(join(dir, name, 'config.json'), JSON.stringify(config));
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes a node model (`model.ts` source and config.json, backend set) into a repository. */
export function writeNodeModel(repo: string, name: string, source: string, config: Config, version = '1'): void {
  mkdirSync(join(repo, name, version), { recursive: true });
  writeFileSync(join(repo, name, version, 'model.ts'), source);
  writeFileSync(join(repo, name, 'config.json'), JSON.stringify({ backend: 'node', ...config }));
}

export const CLS_MODEL_FILE = realpathSync(join(SHIPPED, 'ppocr_cls', '1', 'model.onnx'));
