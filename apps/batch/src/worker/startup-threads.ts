import { readdirSync } from 'node:fs';

/** A process's thread ids (Linux /proc; none elsewhere). */
export function threadsOf(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/task`);
  } catch {
    return []; // not Linux
  }
}

/**
 * The threads this process had before any module ran: V8's platform threads (its GC and compiler
 * helpers). main.ts imports this first, so libuv's pool (started on first use, by module loading
 * among others) is not in it; lowerHelperThreads gives these the lowest nice value.
 */
export const STARTUP_THREADS: readonly string[] = threadsOf(process.pid).filter((tid) => tid !== String(process.pid));
