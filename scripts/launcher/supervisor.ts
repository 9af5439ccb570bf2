import { spawn, type ChildProcess } from 'node:child_process';

export interface Supervised {
  name: string;
  proc: ChildProcess;
  alive: () => boolean;
}

/**
 * Starts one app as a child in its own process group, so only the launcher decides when it
 * stops (a terminal Ctrl-C reaches the launcher, which then drains the apps in order).
 */
export function startChild(name: string, script: string, env: NodeJS.ProcessEnv, onExit: (code: number | null, signal: NodeJS.Signals | null) => void): Supervised {
  const proc = spawn(process.execPath, [script], { env, stdio: ['ignore', 'inherit', 'inherit'], detached: true });
  let alive = true;
  proc.on('exit', (code, signal) => {
    alive = false;
    onExit(code, signal);
  });
  return { name, proc, alive: () => alive };
}

/** SIGTERM each child and wait for all to exit (SIGKILL after `graceMs`). */
export async function stopChildren(children: Supervised[], graceMs: number): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((done) => {
          if (!c.alive()) return done();
          const timer = setTimeout(() => {
            c.proc.kill('SIGKILL');
          }, graceMs);
          c.proc.once('exit', () => {
            clearTimeout(timer);
            done();
          });
          c.proc.kill('SIGTERM');
        }),
    ),
  );
}
