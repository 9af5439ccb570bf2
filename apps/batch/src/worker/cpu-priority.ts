import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import { schedIdleLauncher } from '@tandem/inference';
import { STARTUP_THREADS } from './startup-threads';

/**
 * Lowers the scheduling priority (nice) of this process's existing threads; threads created
 * later (onnxruntime worker threads, the libuv pool) inherit it from the thread creating them.
 * On Linux a nice value belongs to a thread, so every task of the process is set one by one.
 */
export function lowerCpuPriority(nice: number): void {
  setPriority(nice);
  for (const tid of tasksOf(process.pid)) {
    try {
      setPriority(Number(tid), nice);
    } catch {
      // a thread that ended meanwhile
    }
  }
}

/**
 * Puts `threads` of a process (by default this one's V8 platform threads, STARTUP_THREADS) under
 * SCHED_IDLE (`chrt`), as the units' processes run; returns how many. These are V8's parallel
 * and concurrent GC and compiler helpers. The worker streams megabytes of chunk buffers a second
 * and runs a major GC about every second while busy; one in progress when online traffic
 * started put three or four helpers on the cores beside the gateway (traces: 120 ms of their CPU
 * in the first 300 ms, online p99 up to 72 ms). V8's main thread joins its parallel GC jobs
 * itself, so starved helpers only make this worker's GC take longer. The main thread, libuv's
 * pool (database host lookups, files) and the revocation fast path keep SCHED_OTHER.
 */
export function idleHelperThreads(threads: readonly string[] = STARTUP_THREADS): number {
  const chrt = schedIdleLauncher();
  if (!chrt) return 0;
  let n = 0;
  for (const tid of threads) if (spawnSync(chrt, ['--idle', '-p', '0', tid], { stdio: 'ignore' }).status === 0) n++;
  return n;
}

function tasksOf(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/task`);
  } catch {
    return []; // not Linux: the main thread's priority is all there is to set
  }
}
