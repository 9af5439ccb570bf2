import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';

/**
 * `node --require dist/bench/support/gc-count.hook.js <app>`: counts the main thread's GCs by kind
 * (count, total and largest pause in ms) and writes them every 0.5 s to `<tmpdir>/gc-<pid>.json`
 * with the script's path, e.g. through BENCH_GATEWAY_NODE_ARGS, to compare two builds' GCs.
 */
if (isMainThread) {
  const KINDS: Record<number, string> = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' };
  const counts: Record<string, { n: number; ms: number; max: number }> = {};
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as { detail?: { kind?: number } }).detail?.kind ?? 0;
      const c = (counts[KINDS[kind] ?? String(kind)] ??= { n: 0, ms: 0, max: 0 });
      c.n++;
      c.ms += e.duration;
      c.max = Math.max(c.max, e.duration);
    }
  }).observe({ entryTypes: ['gc'] });
  setInterval(() => writeFileSync(join(tmpdir(), `gc-${process.pid}.json`), JSON.stringify({ script: process.argv[1], counts })), 500).unref();
}
