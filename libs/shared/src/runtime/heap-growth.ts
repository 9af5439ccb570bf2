import { setFlagsFromString } from 'node:v8';

/** Old-generation headroom after each full GC: the limit becomes (1 + percent/100) × live. */
export const SERVING_HEAP_GROWING_PERCENT = 100;

/**
 * Fix V8's old-generation growing factor for a serving process. V8 derives the factor from GC
 * speed over old-generation allocation speed: after a quiet moment (the end of a burst) it drops
 * to 1.1–1.4, the limit lands a few MB above the live heap, and a gateway that allocates request
 * buffers at a steady rate then marks and compacts every 120–200 ms for as long as it runs
 * (measured: 25–32 % of the main thread in major GC, online p99 6 → 35 ms at the same load, in
 * 4 of 6 runs; docs/benchmarks.md). A fixed factor of 2 keeps the heap at most about twice its
 * live size (~50 → ~100 MB here) and the loop never starts. An operator's own
 * `--heap-growing-percent` on the node command line wins.
 */
export function fixHeapGrowth(execArgv: readonly string[] = process.execArgv, percent = SERVING_HEAP_GROWING_PERCENT): boolean {
  if (execArgv.some((a) => a.startsWith('--heap-growing-percent') || a.startsWith('--heap_growing_percent'))) return false;
  setFlagsFromString(`--heap-growing-percent=${percent}`);
  return true;
}
