import { fork, type ChildProcess } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { clsBinaryTarget, openLoop, type LoadResult } from './http-load';

/**
 * Open-loop load from a process of its own. A load generator's event-loop hiccups count as
 * latency (latency is measured from each request's scheduled time), so it must not share a
 * process with a benchmark's bookkeeping (samplers, traces, a large heap).
 */
export interface RemoteLoad extends LoadResult {
  /** Each answered request: scheduled time (epoch ms) and latency (ms). */
  samples: [number, number][];
  /** The load child's own event-loop delay while it ran (p99, max). */
  clientLagP99Ms: number;
  clientLagMaxMs: number;
}

export class LoadChild {
  private constructor(private readonly child: ChildProcess) {}

  static start(): LoadChild {
    return new LoadChild(fork(__filename, ['--load-child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  }

  /** Open loop of ppocr_cls binary requests at `rate` for `seconds` against the gateway on `port`. */
  openLoop(port: number, rate: number, seconds: number, key?: string): Promise<RemoteLoad> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: RemoteLoad): void => {
        this.child.off('exit', onExit);
        resolve(m);
      };
      const onExit = (code: number | null): void => reject(new Error(`load child exited with ${code}`));
      this.child.once('message', onMessage);
      this.child.once('exit', onExit);
      this.child.send({ port, rate, seconds, key });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  stop(): void {
    this.child.kill('SIGTERM');
  }
}

if (process.argv[2] === '--load-child') {
  process.on('message', (m: { port: number; rate: number; seconds: number; key?: string }) => {
    const samples: [number, number][] = [];
    const origin = performance.timeOrigin;
    // The client's own stalls count as latency (sends are timed from their schedule): report them.
    const lag = monitorEventLoopDelay({ resolution: 1 });
    lag.enable();
    void openLoop(clsBinaryTarget(m.port, m.key), m.rate, m.seconds, (at, ms) => {
      if (ms !== null) samples.push([origin + at, ms]);
    }).then((r) => {
      lag.disable();
      process.send!({ ...r, samples, clientLagP99Ms: lag.percentile(99) / 1e6, clientLagMaxMs: lag.max / 1e6 });
    });
  });
}
