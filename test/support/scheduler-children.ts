import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { SchedulerOptions } from '@tandem/scheduler';
import type { WorkerCommand } from './scheduler-node-worker';

const ROOT = process.cwd();

/**
 * Compiles the worker and the libs it needs with swc into a private folder (not dist/, which
 * `npm run build` wipes while other tests may be running). Resolves node_modules from the repo.
 */
export function compileWorker(): string {
  const out = join(ROOT, 'node_modules', '.cache', 'tandem-sched-test', randomBytes(4).toString('hex'));
  mkdirSync(out, { recursive: true });
  execFileSync(
    join(ROOT, 'node_modules', '.bin', 'swc'),
    [
      'libs/shared/src',
      'libs/sdk/src',
      'libs/persistence/src',
      'libs/inference/src',
      'libs/scheduler/src',
      'migrations',
      'scripts/fuzz/prng.ts',
      'test/support/scheduler-node-worker.ts',
      '-d',
      out,
      '--config-file',
      '.swcrc',
      '--quiet',
      '--ignore',
      '**/*.spec.ts',
    ],
    { cwd: ROOT, stdio: 'pipe' },
  );
  const main = join(out, 'test', 'support', 'scheduler-node-worker.js');
  if (!existsSync(main)) throw new Error(`worker did not compile to ${main}`);
  return resolve(main);
}

type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };
type Cmd = WorkerCommand extends infer C ? (C extends { id: number } ? Omit<C, 'id'> : never) : never;

/** A forked scheduler node, driven over IPC. */
export class WorkerNode {
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly exited: Promise<number | null>;

  private constructor(readonly child: ChildProcess) {
    child.on('message', (m: Reply | { ready: true }) => {
      if ('id' in m) {
        const w = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        if (m.ok) w?.resolve(m.value);
        else w?.reject(new Error(m.error));
      }
    });
    this.exited = new Promise((res) =>
      child.on('exit', (code) => {
        for (const w of this.waiting.values()) w.reject(new Error('worker exited'));
        res(code);
      }),
    );
  }

  static async start(script: string, url: string, options: Partial<SchedulerOptions>): Promise<WorkerNode> {
    const child = fork(script, [], { env: { ...process.env, SCHED_WORKER: JSON.stringify({ url, options }) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const node = new WorkerNode(child);
    await new Promise<void>((res, rej) => {
      child.once('message', () => res());
      child.once('exit', (code) => rej(new Error(`worker exited with ${code} before ready`)));
    });
    return node;
  }

  call<T>(cmd: Cmd): Promise<T> {
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ ...cmd, id });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await this.call({ cmd: 'stop' }).catch(() => undefined);
    await this.exited;
  }
}
