import { existsSync } from 'node:fs';

/**
 * Which malloc the gateway and batch processes run on. Node's buffers, onnxruntime's tensors
 * and batch tensors are 100 KiB–10 MiB blocks. glibc keeps what a burst of them took (its mmap
 * threshold rises after large frees, and freed blocks inside the heap are never returned), so a
 * process's RSS steps up with every new peak of in-flight requests and stays there; the soak
 * saw the gateway go 330 → 510 MiB. jemalloc hands freed pages back within seconds (soak: flat
 * at ~300 MiB). glibc with a fixed mmap threshold is the fallback where jemalloc is missing: it
 * returns large blocks, not the fragmented heap. Figures: docs/benchmarks.md, allocator.
 */
export type MallocMode = 'auto' | 'jemalloc' | 'glibc';

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

export interface AllocatorChoice {
  name: 'jemalloc' | 'glibc-tuned' | 'glibc';
  /** Variables to add to the child's environment. */
  env: Record<string, string>;
}

/** The variants the allocator benchmark compares; `resolve` fails only for a missing jemalloc. */
export const ALLOCATORS: readonly { name: AllocatorChoice['name']; resolve: () => AllocatorChoice }[] = [
  { name: 'glibc', resolve: () => ({ name: 'glibc', env: { GLIBC_TUNABLES: '' } }) },
  { name: 'glibc-tuned', resolve: () => ({ name: 'glibc-tuned', env: { GLIBC_TUNABLES: DEFAULT_GLIBC_TUNABLES } }) },
  {
    name: 'jemalloc',
    resolve: () => {
      const lib = findJemalloc();
      if (!lib) throw new Error('jemalloc is not installed (Debian/Ubuntu: apt-get install libjemalloc2)');
      return { name: 'jemalloc', env: { LD_PRELOAD: lib } };
    },
  },
];

/**
 * The allocator for the launcher's children. An operator who sets LD_PRELOAD or
 * GLIBC_TUNABLES has chosen already and is left alone.
 */
export function chooseAllocator(mode: MallocMode, env: NodeJS.ProcessEnv, jemalloc: string | null = findJemalloc() ?? null): { env: Record<string, string>; description: string } {
  if (env.LD_PRELOAD !== undefined || env.GLIBC_TUNABLES !== undefined) return { env: {}, description: 'as set by LD_PRELOAD / GLIBC_TUNABLES' };
  if (mode !== 'glibc' && jemalloc) return { env: { LD_PRELOAD: jemalloc }, description: `jemalloc (${jemalloc})` };
  if (mode === 'jemalloc') throw new Error('TANDEM_MALLOC=jemalloc but libjemalloc.so.2 is not installed (Debian/Ubuntu: apt-get install libjemalloc2)');
  const why = mode === 'auto' ? '; install libjemalloc2 for flat memory after bursts' : '';
  return { env: { GLIBC_TUNABLES: DEFAULT_GLIBC_TUNABLES }, description: `glibc, fixed mmap threshold${why}` };
}
