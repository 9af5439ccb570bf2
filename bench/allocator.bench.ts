import 'reflect-metadata';
import type { ChildProcess } from 'node:child_process';
import { chooseAllocator, findJemalloc } from '../scripts/launcher/allocator-env';
import { metricValue, rssMiB } from '../scripts/support/process-probe';
import { benchDatabase, closedLoop, clsBinaryTarget, freePort, openLoop, spawnServer } from './support/http-load';

/**
 * `npm run bench:allocator`: the gateway under each malloc the launcher can pick, in the same
 * run, rounds interleaved. Per variant: closed-loop throughput on ppocr_cls (16 clients), then a
 * burst (400 clients, more than the model queue holds), then 50 % load for a while, and the RSS
 * at ready, right after the burst and at the end. A leak-free process under a malloc that gives
 * memory back returns to its pre-burst RSS; one that keeps its high-water mark does not.
 * Env: BENCH_SECONDS (8), BENCH_ROUNDS (2), DATABASE_URL; BENCH_GLIBC_TUNABLES adds a variant
 * `glibc-custom` with those tunables, to try settings beside the shipped ones.
 */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const say = (s: string): void => void process.stdout.write(`${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function heapMiB(port: number): Promise<{ heap: number; external: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const v = (name: string): number => metricValue(text, name) / 1024 / 1024;
  return { heap: v('nodejs_heap_size_total_bytes'), external: v('nodejs_external_memory_bytes') };
}

interface Sample {
  heapEnd: number;
  externalEnd: number;
  rps: number;
  rssReady: number;
  rssBeforeBurst: number;
  rssAfterBurst: number;
  rssEnd: number;
}

async function measure(choice: { env: Record<string, string> }, databaseUrl: string): Promise<Sample> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...choice.env,
    GATEWAY_PORT: String(port),
    GATEWAY_GRPC_PORT: String(await freePort()),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    TANDEM_AUTH: 'off',
    DATABASE_URL: databaseUrl,
    QUEUE_PREFIX: 'benchalloc',
  };
  if (!choice.env.LD_PRELOAD) delete env.LD_PRELOAD;
  const gw: ChildProcess = await spawnServer(['dist/apps/gateway/src/main.js'], env, `http://127.0.0.1:${port}/v2/health/ready`);
  try {
    const pid = gw.pid!;
    const rssReady = rssMiB(pid);
    const t = clsBinaryTarget(port);
    const sat = await closedLoop(t, 16, SECONDS);
    await openLoop(t, sat.rps * 0.5, 5);
    const rssBeforeBurst = rssMiB(pid);
    await closedLoop(t, 400, 3);
    const rssAfterBurst = rssMiB(pid);
    await openLoop(t, sat.rps * 0.5, 10);
    await sleep(1_000);
    const h = await heapMiB(port);
    return { rps: sat.rps, rssReady, rssBeforeBurst, rssAfterBurst, rssEnd: rssMiB(pid), heapEnd: h.heap, externalEnd: h.external };
  } finally {
    gw.kill('SIGTERM');
    await new Promise((r) => gw.once('exit', r));
  }
}

async function main(): Promise<void> {
  const databaseUrl = await benchDatabase('tandem_bench_allocator', process.env.DATABASE_URL);
  // Stock glibc, then what the launcher's TANDEM_MALLOC=glibc / jemalloc give the apps.
  const variants: { name: string; env: Record<string, string> }[] = [
    { name: 'glibc', env: { GLIBC_TUNABLES: '' } },
    { name: 'glibc-tuned', env: chooseAllocator('glibc', {}).env },
  ];
  const jemalloc = findJemalloc();
  if (jemalloc) variants.push({ name: 'jemalloc', env: chooseAllocator('jemalloc', {}, jemalloc).env });
  else say('jemalloc not installed (libjemalloc2): comparing glibc variants only');
  const custom = process.env.BENCH_GLIBC_TUNABLES;
  if (custom) variants.push({ name: 'glibc-custom', env: { GLIBC_TUNABLES: custom } });
  const samples = new Map<string, Sample[]>(variants.map((v) => [v.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const v of variants) {
      const s = await measure(v, databaseUrl);
      samples.get(v.name)!.push(s);
      say(
        `round ${round + 1} ${v.name.padEnd(11)} ${s.rps.toFixed(0)} req/s  RSS ready ${s.rssReady.toFixed(0)}  before burst ${s.rssBeforeBurst.toFixed(0)}  ` +
          `after burst ${s.rssAfterBurst.toFixed(0)}  end ${s.rssEnd.toFixed(0)} MiB (V8 heap ${s.heapEnd.toFixed(0)}, external ${s.externalEnd.toFixed(0)})`,
      );
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const base = median(samples.get('glibc')!.map((s) => s.rps));
  const result: Record<string, unknown> = { bench: 'allocator', seconds: SECONDS, rounds: ROUNDS };
  for (const [name, xs] of samples) {
    result[name] = {
      rps: Math.round(median(xs.map((s) => s.rps))),
      rps_ratio_vs_glibc: Number((median(xs.map((s) => s.rps)) / base).toFixed(3)),
      rss_before_burst_mib: Math.round(median(xs.map((s) => s.rssBeforeBurst))),
      rss_end_mib: Math.round(median(xs.map((s) => s.rssEnd))),
      rss_kept_after_burst_pct: Number((median(xs.map((s) => (s.rssEnd - s.rssBeforeBurst) / s.rssBeforeBurst)) * 100).toFixed(1)),
    };
  }
  say(JSON.stringify(result));
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench:allocator: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
