import { execFile } from 'node:child_process';

/** Per-process device memory, as nvidia-smi reports it (what a replica's arena really holds). */
export const NVIDIA_SMI_APPS = ['--query-compute-apps=pid,gpu_uuid,used_memory', '--format=csv,noheader,nounits'] as const;

export interface ComputeApp {
  pid: number;
  uuid: string;
  usedMiB: number;
}

/** `pid, gpu_uuid, used_memory` rows; `[N/A]` (e.g. under MIG on some drivers) and malformed rows are skipped. */
export function parseComputeApps(stdout: string): ComputeApp[] {
  const out: ComputeApp[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    const [pid, uuid, used] = line.split(',').map((s) => s.trim());
    if (!pid || !uuid || !used || !/^\d+$/.test(pid) || !/^\d+$/.test(used)) continue;
    out.push({ pid: Number(pid), uuid, usedMiB: Number(used) });
  }
  return out;
}

/** The narrow seam to the machine: tests substitute a fake. */
export interface GpuMemoryMeter {
  /** Device memory `pid` holds on the device `uuid`, MiB; undefined when it cannot be told. */
  processMiB(pid: number, uuid: string): Promise<number | undefined>;
}

export const nvidiaSmiMeter: GpuMemoryMeter = {
  processMiB: (pid, uuid) =>
    new Promise((resolve) => {
      execFile('nvidia-smi', [...NVIDIA_SMI_APPS], { timeout: 10_000 }, (err, stdout) => {
        if (err) return resolve(undefined);
        const apps = parseComputeApps(String(stdout)).filter((a) => a.pid === pid && a.uuid === uuid);
        // A process with nothing on the device is not listed: it holds 0.
        resolve(apps.reduce((s, a) => s + a.usedMiB, 0));
      });
    }),
};

let chain: Promise<unknown> = Promise.resolve();

/**
 * Runs `open` (a session's creation and warm-up) alone among measured opens of this process, and
 * returns what this process's memory on the device grew by meanwhile: the replica's arena after
 * its warm-up, plus the CUDA context when it is the first session there (which it then holds too).
 */
export function measureDeviceMemory<T>(meter: GpuMemoryMeter, uuid: string, open: () => Promise<T>): Promise<{ value: T; memoryMiB: number | undefined }> {
  const run = chain.then(async () => {
    const before = await meter.processMiB(process.pid, uuid);
    const value = await open();
    const after = before === undefined ? undefined : await meter.processMiB(process.pid, uuid);
    return { value, memoryMiB: before !== undefined && after !== undefined && after > before ? after - before : undefined };
  });
  chain = run.catch(() => undefined);
  return run;
}
