import { existsSync } from 'node:fs';

/**
 * Which malloc the gateway and batch processes run on (TANDEM_MALLOC). Node's request bodies,
 * batch tensors and onnxruntime buffers are 100 KiB–10 MiB blocks. Stock glibc raises its mmap
 * threshold after each large free, so such blocks then come from the heap and what a burst
 * took stays resident: the soak saw the gateway go 330 → 510 MiB. Measured (bench:allocator,
 * soak; docs/benchmarks.md):
 * - `glibc` (default): glibc with a fixed 128 KiB mmap threshold; large blocks go back to the
 *   kernel on free (small ones still keep a burst's high-water mark). Same throughput as stock glibc.
 * - `jemalloc`: preloads libjemalloc2; flattest RSS in the soak, but 13–18 % less throughput
 *   on ppocr_cls here, so opt-in.
 * - `system`: the environment as it is (stock glibc unless LD_PRELOAD / GLIBC_TUNABLES say otherwise).
 */
export type MallocMode = 'glibc' | 'jemalloc' | 'system';

export const DEFAULT_GLIBC_TUNABLES = 'glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072';

const JEMALLOC_PATHS = [
  '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2',
  '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2',
  '/usr/lib64/libjemalloc.so.2',
  '/usr/lib/libjemalloc.so.2',
  '/usr/local/lib/libjemalloc.so.2',
];

/** The shared library of Debian's `libjemalloc2` (or a distribution's equivalent), if installed. */
export function findJemalloc(paths: readonly string[] = JEMALLOC_PATHS): string | undefined {
  return paths.find((p) => existsSync(p));
}

/**
 * The allocator for the launcher's children. An operator who sets LD_PRELOAD or
 * GLIBC_TUNABLES has chosen already and is left alone.
 */
export function chooseAllocator(
  mode: MallocMode,
  env: NodeJS.ProcessEnv,
  jemalloc: string | null = findJemalloc() ?? null,
): { env: Record<string, string>; description: string } {
  if (env.LD_PRELOAD !== undefined || env.GLIBC_TUNABLES !== undefined) return { env: {}, description: 'as set by LD_PRELOAD / GLIBC_TUNABLES' };
  if (mode === 'system') return { env: {}, description: 'system default (TANDEM_MALLOC=system)' };
  if (mode === 'jemalloc') {
    if (!jemalloc) throw new Error('TANDEM_MALLOC=jemalloc but libjemalloc.so.2 is not installed (Debian/Ubuntu: apt-get install libjemalloc2)');
    return { env: { LD_PRELOAD: jemalloc }, description: `jemalloc (${jemalloc})` };
  }
  return { env: { GLIBC_TUNABLES: DEFAULT_GLIBC_TUNABLES }, description: 'glibc, fixed 128 KiB mmap threshold (TANDEM_MALLOC=glibc)' };
}
