import { readFileSync } from 'node:fs';

/**
 * The fields of /proc/<pid>/stat after the command name (state first, then the parent pid, ...;
 * utime and stime at 11 and 12), or null if the process is gone.
 */
export function procStat(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  } catch {
    return null;
  }
}

/** CPU seconds (user + system, every thread) a process has used so far; NaN if it is gone. */
export function cpuSeconds(pid: number): number {
  const f = procStat(pid);
  return f ? (Number(f[11]) + Number(f[12])) / 100 : NaN; // clock ticks, USER_HZ = 100
}
