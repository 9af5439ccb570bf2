import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { compileUserModule, evaluateUserModule, tandemModulePaths, type CompiledModule } from '@tandem/shared';

const compiled = new Map<string, Promise<CompiledModule>>();

/**
 * A thread or process entry of this library (`<dir>/<name>.ts` under vitest, `.js` in dist/),
 * bundled once per process with the user-code compiler: a Worker cannot load a .ts file, and a
 * real module file is type-checked and linted like the rest (no source kept in a string).
 */
export function compiledEntry(dir: string, name: string): Promise<CompiledModule> {
  const base = resolve(dir, name);
  let p = compiled.get(base);
  if (!p) {
    const file = ['.ts', '.js'].map((ext) => base + ext).find((f) => existsSync(f));
    p = file ? compileUserModule(file) : Promise.reject(new Error(`${base}.{ts,js} not found`));
    compiled.set(base, p);
    p.catch(() => compiled.delete(base));
  }
  return p;
}

/** How a thread or process evaluates an entry: the user-module evaluator, shipped as source. */
export const EVALUATE_SOURCE = `const evaluate = ${evaluateUserModule.toString()};`;

/** A worker thread running `entry`'s default export with `workerData.data` (the entry reads parentPort itself). */
export function entryWorker(entry: CompiledModule, data: unknown, opts: Omit<WorkerOptions, 'eval' | 'workerData'> = {}): Worker {
  const boot = `${EVALUATE_SOURCE}
const { workerData } = require('node:worker_threads');
const mod = evaluate(workerData.entry, workerData.modulePaths);
(mod.default || mod)(workerData.data);`;
  return new Worker(boot, { ...opts, eval: true, workerData: { entry, modulePaths: tandemModulePaths(), data } });
}
