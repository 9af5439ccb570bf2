import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** A user file (model, task, reducer) compiled to one CommonJS script, ready to evaluate in any thread or process. */
export interface CompiledModule {
  /** Absolute path of the user's entry file; stack traces and `require` resolve from it. */
  readonly filename: string;
  readonly code: string;
}

export class UserModuleError extends Error {}

let compiling = 0;

/** The SDK's entry: TypeScript source under vitest, compiled JavaScript under dist/. */
function sdkEntry(): string {
  const base = resolve(__dirname, '..', '..', '..', 'sdk', 'src', 'index');
  for (const ext of ['.ts', '.js']) if (existsSync(base + ext)) return base + ext;
  throw new UserModuleError(`@tandem/sdk not found at ${base}.{ts,js}`);
}

/**
 * Compiles a user's `.ts`/`.js`/`.mjs` file and its relative imports into one CommonJS script
 * (esbuild: TypeScript is first-class without a build step on the user's side). `@tandem/sdk`
 * is bundled from this installation, so files outside the project's source tree import it
 * without installing anything; other packages stay external and are required at run time,
 * from the file's folder first, then from Tandem's own node_modules.
 */
export async function compileUserModule(file: string): Promise<CompiledModule> {
  const filename = resolve(file);
  if (!existsSync(filename)) throw new UserModuleError(`${filename} does not exist`);
  // Loaded lazily: only processes that load user code pay for esbuild.
  const esbuild = await import('esbuild');
  const sdk = sdkEntry();
  let result: import('esbuild').BuildResult<{ write: false }>;
  compiling++;
  try {
    result = await esbuild.build({
      entryPoints: [filename],
      bundle: true,
      write: false,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      packages: 'external',
      sourcemap: 'inline',
      logLevel: 'silent',
      plugins: [{ name: 'tandem-sdk', setup: (b: import('esbuild').PluginBuild) => b.onResolve({ filter: /^@tandem\/sdk$/ }, () => ({ path: sdk })) }],
    });
  } catch (e) {
    const errors = (e as { errors?: Array<{ text: string; location?: { file: string; line: number; column: number } | null }> }).errors;
    const detail = errors?.length
      ? errors.map((x) => (x.location ? `${x.location.file}:${x.location.line}:${x.location.column}: ${x.text}` : x.text)).join('; ')
      : (e as Error).message;
    throw new UserModuleError(`cannot compile ${filename}: ${detail}`);
  } finally {
    // esbuild keeps a service process per parent; it outlives an exiting parent by up to ~2 s
    // (a stopped app would leave an orphan behind). Stop it when no compile is running; the
    // next build starts a new one.
    if (--compiling === 0) void esbuild.stop();
  }
  const out = result.outputFiles[0];
  if (!out) throw new UserModuleError(`cannot compile ${filename}: no output`);
  return { filename, code: out.text };
}

/**
 * Runs a compiled module and returns its default export. Self-contained (no imports from the
 * enclosing file) so worker threads and unit processes can receive it as source:
 * `evaluateUserModule.toString()`. `fallbackPaths`: node_modules folders searched after the
 * file's own (Tandem's, so a model in a repository outside the project finds onnxruntime-node).
 */
export function evaluateUserModule(mod: CompiledModule, fallbackPaths: readonly string[] = []): unknown {
  const NodeModule = require('node:module') as {
    new (
      id: string,
      parent?: unknown,
    ): { filename: string; paths: string[]; exports: unknown; loaded: boolean; _compile(code: string, filename: string): void };
    _nodeModulePaths(dir: string): string[];
  };
  const path = require('node:path') as typeof import('node:path');
  const m = new NodeModule(mod.filename);
  m.filename = mod.filename;
  m.paths = [...NodeModule._nodeModulePaths(path.dirname(mod.filename)), ...fallbackPaths];
  m._compile(mod.code, mod.filename);
  m.loaded = true;
  const exp = m.exports as { default?: unknown; __esModule?: boolean } | undefined;
  return exp && typeof exp === 'object' && 'default' in exp ? exp.default : exp;
}

/** Tandem's own node_modules folders, for `evaluateUserModule`'s fallback. */
export function tandemModulePaths(): string[] {
  const out: string[] = [];
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const nm = join(dir, 'node_modules');
    if (existsSync(nm)) out.push(nm);
    if (dirname(dir) === dir) return out;
  }
}
