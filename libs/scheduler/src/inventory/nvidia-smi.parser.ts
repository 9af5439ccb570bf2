/** One GPU as reported by `nvidia-smi --query-gpu=…` (see NVIDIA_SMI_QUERY). */
export interface ParsedGpu {
  index: number;
  uuid: string | null;
  name: string;
  memoryTotalMiB: number | null;
  memoryUsedMiB: number | null;
  utilizationPct: number | null;
  /** `Enabled` / `Disabled`, or null where MIG is not supported (`[N/A]`, consumer cards). */
  migMode: string | null;
}

export interface NvidiaSmiParseResult {
  gpus: ParsedGpu[];
  /** Lines that could not be read, with why; the rest of the output is still used. */
  warnings: string[];
}

export const NVIDIA_SMI_QUERY = [
  '--query-gpu=index,uuid,name,memory.total,memory.used,utilization.gpu,mig.mode.current',
  '--format=csv,noheader,nounits',
] as const;

const FIELDS = 7;

/** nvidia-smi prints these (bracketed or not) where a value is unknown or not applicable. */
function isMissing(v: string): boolean {
  if (v === '') return true;
  const bare = v
    .replace(/^\[|\]$/g, '')
    .trim()
    .toLowerCase();
  return ['n/a', 'not supported', 'unknown error', 'insufficient permissions', 'gpu is lost', 'requested functionality has been deprecated'].includes(bare);
}

function num(v: string): number | null {
  if (isMissing(v)) return null;
  // `nounits` should drop units, but tolerate them (e.g. "81559 MiB", "35 %").
  const m = /^(-?\d+(?:\.\d+)?)\s*(?:MiB|%)?$/i.exec(v);
  return m ? Number(m[1]) : null;
}

/**
 * Parses `--format=csv,noheader,nounits` output. Robust to CRLF, blank lines, a stray header,
 * commas inside the product name, `[N/A]`/`[Not Supported]` values and driver error text
 * (reported as warnings rather than thrown, so a half-broken node still registers its CPU).
 */
export function parseNvidiaSmi(output: string): NvidiaSmiParseResult {
  const gpus: ParsedGpu[] = [];
  const warnings: string[] = [];
  const seen = new Set<number>();
  for (const raw of output.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '') continue;
    if (/^index\s*,/i.test(line)) continue; // a header, if someone dropped `noheader`
    let parts = line.split(',').map((p) => p.trim());
    if (parts.length < FIELDS) {
      warnings.push(`unparseable line: ${line.slice(0, 200)}`);
      continue;
    }
    if (parts.length > FIELDS) {
      // Only the name can contain commas: rejoin everything between uuid and the 4 numeric tail fields.
      const extra = parts.length - FIELDS;
      parts = [parts[0]!, parts[1]!, parts.slice(2, 3 + extra).join(', '), ...parts.slice(3 + extra)];
    }
    const [indexS, uuidS, nameS, totalS, usedS, utilS, migS] = parts as [string, string, string, string, string, string, string];
    const index = num(indexS);
    if (index === null || !Number.isInteger(index) || index < 0) {
      warnings.push(`bad GPU index "${indexS}": ${line.slice(0, 200)}`);
      continue;
    }
    if (seen.has(index)) {
      warnings.push(`duplicate GPU index ${index}; keeping the first`);
      continue;
    }
    seen.add(index);
    const memoryTotalMiB = num(totalS);
    if (memoryTotalMiB === null) warnings.push(`GPU ${index}: memory.total is "${totalS}"; registering 0 MiB`);
    gpus.push({
      index,
      uuid: isMissing(uuidS) ? null : uuidS,
      name: isMissing(nameS) ? 'Unknown NVIDIA GPU' : nameS,
      memoryTotalMiB,
      memoryUsedMiB: num(usedS),
      utilizationPct: num(utilS),
      migMode: isMissing(migS) ? null : migS,
    });
  }
  gpus.sort((a, b) => a.index - b.index);
  return { gpus, warnings };
}
