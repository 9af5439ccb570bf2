import { readFileSync } from 'node:fs';

/** Resident memory of a local process, from /proc (Linux). */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** One unlabelled sample from a Prometheus text exposition (`name value`), NaN if absent. */
export function metricValue(text: string, name: string): number {
  return Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN);
}
