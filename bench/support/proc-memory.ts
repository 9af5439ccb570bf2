import { readFileSync, writeFileSync } from 'node:fs';

/** A /proc/<pid>/status field in bytes (VmRSS, VmHWM), or null when the process is gone. */
export function procKb(pid: number, field: 'VmRSS' | 'VmHWM'): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * Peak RSS of one process over a phase: VmHWM after resetting it (writing 5 to clear_refs, Linux
 * ≥ 4.0, own processes), and the largest VmRSS sampled every 100 ms as a cross-check where the
 * reset is not allowed (then VmHWM is the process's lifetime peak, an upper bound).
 */
export class PeakRss {
  private maxSampled = 0;
  private readonly timer: NodeJS.Timeout;
  readonly reset: boolean;

  constructor(private readonly pid: number) {
    let reset = true;
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5');
    } catch {
      reset = false;
    }
    this.reset = reset;
    this.timer = setInterval(() => {
      this.maxSampled = Math.max(this.maxSampled, procKb(pid, 'VmRSS') ?? 0);
    }, 100);
    this.timer.unref();
  }

  /** Bytes: the phase's peak (VmHWM when it was reset, else the sampled maximum). */
  stop(): { peakBytes: number; sampledBytes: number; hwmBytes: number; reset: boolean } {
    clearInterval(this.timer);
    const hwm = procKb(this.pid, 'VmHWM') ?? 0;
    return { peakBytes: this.reset ? Math.max(hwm, this.maxSampled) : this.maxSampled, sampledBytes: this.maxSampled, hwmBytes: hwm, reset: this.reset };
  }
}

export const mib = (b: number): string => `${(b / 1024 / 1024).toFixed(0)} MiB`;
