import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..', '..');

/**
 * Compiles the apps once into a private folder under test-artifacts/ (gitignored), so tests can
 * run real worker processes without racing other engineers' `npm run build` into dist/.
 */
export function buildWorkerBundle(): { main: string; cleanup(): void } {
  const out = join('test-artifacts', `batch-${randomBytes(4).toString('hex')}`);
  execFileSync(join(ROOT, 'node_modules', '.bin', 'swc'), ['apps', 'libs', 'migrations', '-d', out, '--copy-files', '--quiet', '--ignore', '**/*.spec.ts'], {
    cwd: ROOT,
    stdio: 'pipe',
  });
  return { main: join(ROOT, out, 'apps', 'batch', 'src', 'main.js'), cleanup: () => rmSync(join(ROOT, out), { recursive: true, force: true }) };
}

/** Starts `node main.js` with BATCH_ROLE=worker; stderr is kept for diagnostics. */
export function spawnWorker(main: string, env: Record<string, string>): ChildProcess & { logs: string[] } {
  const child = spawn(process.execPath, [main], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env, BATCH_ROLE: 'worker' },
    stdio: ['ignore', 'pipe', 'pipe'],
  }) as ChildProcess & { logs: string[] };
  child.logs = [];
  child.stdout?.on('data', (b: Buffer) => child.logs.push(b.toString()));
  child.stderr?.on('data', (b: Buffer) => child.logs.push(b.toString()));
  return child;
}

export async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}
