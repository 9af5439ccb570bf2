import { execFile } from 'node:child_process';
import { NVIDIA_SMI_LIST, parseNvidiaSmiList, type ListedGpu } from './nvidia-smi-list.parser';
import { NVIDIA_SMI_QUERY, parseNvidiaSmi, type ParsedGpu } from './nvidia-smi.parser';

/** What the probe learnt: the GPUs' query rows, `-L`'s GPUs with their MIG devices, and what went wrong. */
export interface GpuProbeResult {
  gpus: ParsedGpu[];
  /** From `nvidia-smi -L`; empty when it failed (then MIG devices are unknown). */
  listed: ListedGpu[];
  warnings: string[];
}

/** The narrow seam between discovery and the machine: tests substitute a fake. */
export interface GpuProbe {
  probe(): Promise<GpuProbeResult>;
}

interface Run {
  stdout: string;
  /** Why it failed (binary missing, exit code + stderr), or null. */
  error: string | null;
}

/**
 * Runs nvidia-smi twice: the CSV query (memory, MIG mode) and `-L` (MIG devices and their UUIDs).
 * A missing binary or a failing driver means "no GPUs" plus a warning, never a crash.
 */
export class NvidiaSmiProbe implements GpuProbe {
  constructor(
    private readonly binary = 'nvidia-smi',
    private readonly timeoutMs = 10_000,
  ) {}

  async probe(): Promise<GpuProbeResult> {
    const q = await this.run([...NVIDIA_SMI_QUERY]);
    // nvidia-smi exits non-zero on partial failures (a GPU off the bus) but may still print usable rows.
    const parsed = parseNvidiaSmi(q.stdout);
    if (q.error && parsed.gpus.length === 0) return { gpus: [], listed: [], warnings: [q.error] };
    const l = await this.run([...NVIDIA_SMI_LIST]);
    const listed = parseNvidiaSmiList(l.stdout);
    const warnings = [...(q.error ? [q.error] : []), ...parsed.warnings, ...(l.error ? [l.error] : []), ...listed.warnings];
    return { gpus: parsed.gpus, listed: listed.gpus, warnings };
  }

  private run(args: string[]): Promise<Run> {
    return new Promise((resolve) => {
      execFile(this.binary, args, { timeout: this.timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
        if (!err) return resolve({ stdout: String(stdout), error: null });
        const code = (err as NodeJS.ErrnoException).code as string | number | undefined;
        const detail = String(stderr || stdout || err.message)
          .trim()
          .split(/\r?\n/)[0]!
          .slice(0, 300);
        const what = args[0] === '-L' ? '-L' : '--query-gpu';
        const why = code === 'ENOENT' ? `${this.binary} not found` : `${this.binary} ${what} failed (exit ${code ?? err.signal ?? '?'}): ${detail}`;
        resolve({ stdout: String(stdout ?? ''), error: why });
      });
    });
  }
}

/** A probe over fixed text (captured output, or none): for tests and GPU-less configs. */
export class StaticGpuProbe implements GpuProbe {
  constructor(
    private readonly query: string,
    private readonly list = '',
  ) {}
  async probe(): Promise<GpuProbeResult> {
    const q = parseNvidiaSmi(this.query);
    const l = parseNvidiaSmiList(this.list);
    return { gpus: q.gpus, listed: l.gpus, warnings: [...q.warnings, ...l.warnings] };
  }
}
