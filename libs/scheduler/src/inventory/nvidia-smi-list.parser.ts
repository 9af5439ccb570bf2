/**
 * `nvidia-smi -L`: one line per physical GPU and, under a MIG-enabled GPU, one indented line per
 * MIG device (what CUDA enumerates there instead of the GPU):
 *
 *   GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-5a3c9e0b-…)
 *     MIG 3g.40gb     Device  0: (UUID: MIG-0b6e2a4c-…)
 *
 * R450-era drivers printed `MIG 1g.5gb Device 0: (UUID: MIG-GPU-<parent>/<gi>/<ci>)`; both parse.
 */
export interface ListedGpu {
  index: number;
  name: string;
  uuid: string;
  mig: ListedMigDevice[];
}

export interface ListedMigDevice {
  /** The MIG device index nvidia-smi prints under its GPU (`Device  0`). */
  index: number;
  /** e.g. `3g.40gb`, `1g.10gb+me`, `1c.3g.40gb` (a compute instance smaller than its GPU instance). */
  profile: string;
  uuid: string;
}

export interface NvidiaSmiListResult {
  gpus: ListedGpu[];
  warnings: string[];
}

export const NVIDIA_SMI_LIST = ['-L'] as const;

const GPU_LINE = /^GPU (\d+): (.+?) \(UUID: (GPU-[^)\s]+)\)$/;
const MIG_LINE = /^MIG (\S+)\s+Device\s+(\d+): \(UUID: (MIG-[^)\s]+)\)$/;

export function parseNvidiaSmiList(output: string): NvidiaSmiListResult {
  const gpus: ListedGpu[] = [];
  const warnings: string[] = [];
  for (const raw of output.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '') continue;
    const g = GPU_LINE.exec(line);
    if (g) {
      gpus.push({ index: Number(g[1]), name: g[2]!, uuid: g[3]!, mig: [] });
      continue;
    }
    const m = MIG_LINE.exec(line);
    if (m) {
      const parent = gpus.at(-1);
      if (!parent) warnings.push(`MIG device listed before any GPU: ${line.slice(0, 200)}`);
      else parent.mig.push({ index: Number(m[2]), profile: m[1]!, uuid: m[3]! });
      continue;
    }
    warnings.push(`unparseable -L line: ${line.slice(0, 200)}`);
  }
  return { gpus, warnings };
}

/** What a MIG profile name says about the instance's size. */
export interface MigProfileSize {
  /** Compute slices the instance has (the `Nc.` prefix, else its GPU instance's `Ng`). */
  computeSlices: number;
  /** The memory the name advertises, GB (`40gb` → 40). */
  memoryGb: number;
}

const PROFILE = /^(?:(\d+)c\.)?(\d+)g\.(\d+)gb(?:\+\w+)?$/;

export function parseMigProfile(profile: string): MigProfileSize | null {
  const p = PROFILE.exec(profile);
  if (!p) return null;
  const g = Number(p[2]);
  return { computeSlices: p[1] ? Number(p[1]) : g, memoryGb: Number(p[3]) };
}

/**
 * Compute slices of a whole GPU in MIG mode: 4 on the A30, 7 on A100/H100/H200/B200 (the
 * MIG user guide's profile tables).
 */
export function migComputeSlices(gpuName: string): number {
  return /\bA30\b/.test(gpuName) ? 4 : 7;
}

/**
 * Device memory a MIG instance is scheduled with, from its profile name: the advertised GB less
 * 5 %. Real instances report a little less than the name (H100 1g.10gb: 9 728 MiB, 3g.40gb:
 * 40 192 MiB; A100 1g.5gb: 4 864 MiB), and placing by more than the device has is the one
 * mistake the ledger must not make. Never above the parent GPU's total.
 */
export function migMemoryMiB(size: MigProfileSize, parentTotalMiB: number | null): number {
  const est = Math.floor(size.memoryGb * 1024 * 0.95);
  return parentTotalMiB === null ? est : Math.min(est, parentTotalMiB);
}
