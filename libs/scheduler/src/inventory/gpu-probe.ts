import { execFile } from 'node:child_process';
import { NVIDIA_SMI_QUERY, parseNvidiaSmi, type NvidiaSmiParseResult } from './nvidia-smi.parser';

/** The narrow seam between discovery and the machine: tests substitute a fake. */
export interface GpuProbe {
  probe(): Promise<NvidiaSmiParseResult>;
}

/** Runs nvidia-smi; a missing binary or a failing driver means "no GPUs" plus a warning, never a crash. */
export class NvidiaSmiProbe implements GpuProbe {
  constructor(
    private readonly binary = 'nvidia-smi',
    private readonly timeoutMs = 10_000,
  ) {}

  probe(): Promise<NvidiaSmiParseResult> {
    return new Promise((resolve) => {
      execFile(this.binary, [...NVIDIA_SMI_QUERY], { timeout: this.timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
        if (err) {
          const code = (err as NodeJS.ErrnoException).code;
          const why = code === 'ENOENT' ? `${this.binary} not found` : `${this.binary} failed: ${String(stderr || err.message).trim().slice(0, 300)}`;
          // nvidia-smi exits non-zero on partial failures but may still print usable rows.
          const partial = stdout ? parseNvidiaSmi(String(stdout)) : { gpus: [], warnings: [] };
          resolve({ gpus: partial.gpus, warnings: [why, ...partial.warnings] });
          return;
        }
        resolve(parseNvidiaSmi(String(stdout)));
      });
    });
  }
}

/** A probe over fixed text (captured output, or none): for tests and GPU-less configs. */
export class StaticGpuProbe implements GpuProbe {
  constructor(private readonly output: string) {}
  async probe(): Promise<NvidiaSmiParseResult> {
    return parseNvidiaSmi(this.output);
  }
}
