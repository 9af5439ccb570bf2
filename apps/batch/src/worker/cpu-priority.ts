import { setPriority } from 'node:os';
import { readFileSync, writeFileSync } from 'node:fs';
import { STARTUP_THREADS, threadsOf } from './startup-threads';

/**
 * Lowers the scheduling priority (nice) of this process's existing threads; threads created
 * later (onnxruntime worker threads, the libuv pool) inherit it from the thread creating them.
 * On Linux a nice value belongs to a thread, so every task of the process is set one by one.
 */
export function lowerCpuPriority(nice: number): void {
  setPriority(nice);
  for (const tid of threadsOf(process.pid)) {
    try {
      setPriority(Number(tid), nice);
    } catch {
      // a thread that ended meanwhile
    }
  }
}

/** The lowest priority a nice value gives (CFS weight 15 against 1,024 at nice 0). */
export const HELPER_NICE = 19;

/**
 * Gives `threads` of a process (by default this one's V8 platform threads, STARTUP_THREADS) the
 * lowest nice value; returns how many. These are V8's parallel and concurrent GC and compiler
 * helpers. The worker streams megabytes of chunk buffers a second and runs a major GC about every
 * second while busy; one in progress when online traffic started put three or four helpers on
 * the cores beside the gateway (traces: 120 ms of their CPU in the first 300 ms, online p99 up to
 * 72 ms). Not SCHED_IDLE: V8's main thread can wait for a helper that holds a piece of a parallel
 * GC job, and the helpers must not wait behind the worker's own SCHED_IDLE units. The main
 * thread, libuv's pool (database host lookups, files) and the revocation fast path (nice 0) keep
 * theirs.
 */
export function lowerHelperThreads(threads: readonly string[] = STARTUP_THREADS): number {
  let n = 0;
  for (const tid of threads) {
    try {
      setPriority(Number(tid), HELPER_NICE);
      n++;
    } catch {
      // a thread that ended meanwhile
    }
  }
  return n;
}

/** What lowerSessionWeight did. */
export type SessionWeight = { applied: true } | { applied: false; reason: string };

/**
 * Gives the session `pid` leads the scheduler weight of `nice` (Linux autogroups). With
 * `kernel.sched_autogroup_enabled=1` (the default of most distributions) the kernel first shares
 * the cores between sessions, then between the threads of each session, so nice values and
 * SCHED_IDLE order threads only within their own session. `npm start` starts each app in its
 * own session (a process group it can stop whole), and there the batch's SCHED_IDLE units took
 * 0.71 of a core each from two busy nice-0 threads in another session (0.004 in the same
 * session; 0.028 with the units' session at nice 19). Only a session leader changes its
 * session's weight: a batch app started from a shell or a test runner shares that session and
 * leaves it alone. No effect inside a non-root cgroup (a container, a systemd service): there the
 * cgroup's CPU weight decides (docker-compose.yml gives the workers `cpu_shares`).
 */
export function lowerSessionWeight(nice: number, pid: number = process.pid): SessionWeight {
  let session: number;
  try {
    // /proc/<pid>/stat after the command name: state, ppid, pgrp, session, ...
    session = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[3]);
  } catch {
    return { applied: false, reason: 'no /proc (not Linux)' };
  }
  if (session !== pid) return { applied: false, reason: 'not a session leader: shares its session with whoever started it' };
  try {
    writeFileSync(`/proc/${pid}/autogroup`, String(nice));
    return { applied: true };
  } catch (e) {
    return { applied: false, reason: `autogroup: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/** The autogroup (session) `pid` belongs to and its nice value, as /proc prints it: `/autogroup-<n> nice <v>`. */
export function autogroupOf(pid: number): { group: string; nice: number } {
  const [group, , nice] = readFileSync(`/proc/${pid}/autogroup`, 'utf8').trim().split(' ');
  return { group: group!, nice: Number(nice) };
}
