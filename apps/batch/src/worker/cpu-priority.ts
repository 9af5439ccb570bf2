import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';

/**
 * Lowers the scheduling priority (nice) of this process's existing threads; threads created
 * later (onnxruntime worker threads, the libuv pool) inherit it from the thread creating them.
 * On Linux a nice value belongs to a thread, so every task of the process is set one by one.
 */
export function lowerCpuPriority(nice: number): void {
  setPriority(nice);
  let tasks: string[] = [];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return; // not Linux: the main thread's priority is all there is to set
  }
  for (const tid of tasks) {
    try {
      setPriority(Number(tid), nice);
    } catch {
      // a thread that ended meanwhile
    }
  }
}
