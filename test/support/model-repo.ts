import { copyFileSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const SHIPPED = resolve(process.cwd(), 'models');

export interface TempRepo {
  dir: string;
  remove(): void;
}

/**
 * A throw-away model repository: shipped models under their own names, or under new names
 * with another config.json (e.g. a tiny queue to force overload).
 */
export function tempModelRepo(models: Record<string, { from: 'scorer' | 'ppocr_cls'; config: Record<string, unknown> }>): TempRepo {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-models-'));
  for (const [name, m] of Object.entries(models)) {
    mkdirSync(join(dir, name, '1'), { recursive: true });
    copyFileSync(realpathSync(join(SHIPPED, m.from, '1', 'model.onnx')), join(dir, name, '1', 'model.onnx'));
    writeFileSync(join(dir, name, 'config.json'), JSON.stringify(m.config));
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export const CLS_MODEL_FILE = realpathSync(join(SHIPPED, 'ppocr_cls', '1', 'model.onnx'));
