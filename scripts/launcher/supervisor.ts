import { spawn, type ChildProcess } from 'node:child_process';

/** Restart delays: `initialMs` doubling to `maxMs`; a run that lasted `resetAfterMs` starts over. */
export interface RestartPolicy {
  initialMs: number;
  maxMs: number;
  resetAfterMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = { initialMs: 500, maxMs: 30_000, resetAfterMs: 60_000 };

/** Exponential back-off state of one supervised app. */
export class RestartBackoff {
  private failures = 0;
  private count = 0;

  constructor(private readonly policy: RestartPolicy = DEFAULT_RESTART_POLICY) {}

  /** Delay before the next start after a run of `ranMs`. */
  next(ranMs: number): number {
    if (ranMs >= this.policy.resetAfterMs) this.failures = 0;
    const delay = Math.min(this.policy.maxMs, this.policy.initialMs * 2 ** this.failures);
    this.failures++;
    this.count++;
    return delay;
  }

  /** Restarts so far (never reset: the log numbers them). */
  get restarts(): number {
    return this.count;
  }
}

/** Why a child exited, as the log says it. */
export function exitReason(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `signal ${signal}` : `code ${code}`;
}

const seconds = (ms: number): string => `${ms / 1000} s`;

export interface SupervisorHooks {
  say: (msg: string) => void;
  /** Called when the app exits on its own while restarts are off (before `keepAlive`). */
  onExit: (code: number | null, signal: NodeJS.Signals | null) => void;
  /** Called after a restart with its number; resolves when the new process is ready (logs it). */
  onRestarted?: (restart: number, alive: () => boolean) => Promise<void>;
}

/**
 * One app run as a child in its own process group, so only the launcher decides when it stops
 * (a terminal Ctrl-C reaches the launcher, which then drains the apps in order). Once
 * `keepAlive()` is called, a crash restarts the app after a back-off instead of ending the
 * system; before that (start-up) a crash is reported to `onExit`. Exit code 2 (bad config) is
 * never restarted: the same config would fail again.
 */
export class Supervised {
  private child: ChildProcess;
  private running = false;
  private restarting?: NodeJS.Timeout;
  private stopping = false;
  private restartOnCrash = false;
  private startedAt = 0;
  private readonly backoff: RestartBackoff;

  constructor(
    readonly name: string,
    private readonly script: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly hooks: SupervisorHooks,
    policy: RestartPolicy = DEFAULT_RESTART_POLICY,
  ) {
    this.backoff = new RestartBackoff(policy);
    this.child = this.spawn();
  }

  /** The current process (a new one after each restart). */
  get proc(): ChildProcess {
    return this.child;
  }

  /** True while a process of this app runs (false during a restart's back-off). */
  alive(): boolean {
    return this.running;
  }

  /** From now on a crash restarts the app with back-off. */
  keepAlive(): void {
    this.restartOnCrash = true;
  }

  /** SIGTERM the app (cancelling a pending restart) and wait for it to exit; SIGKILL after `graceMs`. */
  stop(graceMs: number): Promise<void> {
    this.stopping = true;
    if (this.restarting) clearTimeout(this.restarting);
    if (!this.running) return Promise.resolve();
    const proc = this.child;
    return new Promise<void>((done) => {
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      proc.once('exit', () => {
        clearTimeout(timer);
        done();
      });
      proc.kill('SIGTERM');
    });
  }

  private spawn(): ChildProcess {
    const proc = spawn(process.execPath, [this.script], { env: this.env, stdio: ['ignore', 'inherit', 'inherit'], detached: true });
    this.running = true;
    this.startedAt = performance.now();
    proc.on('exit', (code, signal) => {
      this.running = false;
      if (this.stopping) return;
      if (!this.restartOnCrash || code === 2) return this.hooks.onExit(code, signal);
      const delay = this.backoff.next(performance.now() - this.startedAt);
      const n = this.backoff.restarts;
      this.hooks.say(`${this.name} exited with ${exitReason(code, signal)}; restarting in ${seconds(delay)} (restart ${n})`);
      this.restarting = setTimeout(() => {
        this.restarting = undefined;
        if (this.stopping) return;
        this.child = this.spawn();
        void this.hooks.onRestarted?.(n, () => this.running);
      }, delay);
    });
    return proc;
  }
}

/** Stops every app (see Supervised.stop). */
export async function stopChildren(children: Supervised[], graceMs: number): Promise<void> {
  await Promise.all(children.map((c) => c.stop(graceMs)));
}
