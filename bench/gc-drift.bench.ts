import 'reflect-metadata';
import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { grpcClosedLoop } from './online-grpc-autoscale.bench-part';
import { benchDatabase, closedLoop, clsBinaryTarget } from './support/http-load';
import { cpuRate, cpuSample, startStack, stealMs, type Stack } from './support/hybrid-stack';
import { LoadChild } from './support/load-child';

/**
 * `npm run bench:gc-drift`: does the gateway's CPU and p99 for the same load drift after bursts?
 * The shipped stack (bench:hybrid's `startStack`), `ppocr_cls` REST binary at 40 % of saturation in
 * open loop from the load child, 10 s phases: two before, then BENCH_BURSTS (2) saturating REST +
 * gRPC bursts of 24 s, each followed by three phases. Per phase: p99, gateway cores, the share of
 * wall time the gateway's main isolate spent in major / incremental / minor GC (prom-client's
 * nodejs_gc_duration_seconds), heap used, steal. V8's own heap growth (what the gateway ran before
 * `fixHeapGrowth`): BENCH_GATEWAY_NODE_ARGS=--heap-growing-percent=0 (an operator's flag wins).
 */
const BURSTS = Number(process.env.BENCH_BURSTS ?? 2);
const say = (s: string): void => void process.stdout.write(`${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function metrics(s: Stack): Promise<Record<'major' | 'incremental' | 'minor' | 'heap', number>> {
  const text = await (await fetch(`http://127.0.0.1:${s.gwPort}/metrics`, { headers: { authorization: `Bearer ${s.key}` } })).text();
  const get = (re: RegExp): number => text.split('\n').reduce((sum, l) => (re.test(l) ? sum + Number(l.split(' ').pop()) : sum), 0);
  return {
    major: get(/^nodejs_gc_duration_seconds_sum\{kind="major"/),
    incremental: get(/^nodejs_gc_duration_seconds_sum\{kind="incremental"/),
    minor: get(/^nodejs_gc_duration_seconds_sum\{kind="minor"/),
    heap: get(/^nodejs_heap_size_used_bytes/) / 2 ** 20,
  };
}

/** Threads of the gateway process (event loop, V8 helpers, libuv pool, replicas). */
const threadCount = (pid: number): number => readdirSync(`/proc/${pid}/task`).length;

async function main(): Promise<void> {
  const url = await benchDatabase('tandem_bench_gc_drift', process.env.DATABASE_URL);
  const stack = await startStack(url, 'bench-gc-drift');
  const load = LoadChild.start();
  const cls = clsBinaryTarget(stack.gwPort, stack.key);
  const pid = stack.gateway.proc.pid!;
  const worst: number[] = [];
  try {
    await closedLoop(cls, 8, 2);
    const sat = await closedLoop(cls, 8, 8);
    const rate = 0.4 * sat.rps;
    say(
      `bench:gc-drift — saturation ${sat.rps.toFixed(0)} req/s, open loop ${rate.toFixed(0)} req/s; gateway node args: ${process.env.BENCH_GATEWAY_NODE_ARGS ?? '(none)'}`,
    );
    await load.openLoop(stack.gwPort, rate, 3, stack.key);
    const phase = async (label: string): Promise<void> => {
      await sleep(3_000);
      const [m0, c0, s0] = [await metrics(stack), cpuSample(stack), stealMs()];
      const r = await load.openLoop(stack.gwPort, rate, 10, stack.key);
      const [m1, c1, s1] = [await metrics(stack), cpuSample(stack), stealMs()];
      const pct = (k: 'major' | 'incremental' | 'minor'): string => `${(((m1[k] - m0[k]) / 10) * 100).toFixed(1)} %`;
      worst.push(r.p99);
      say(
        `${label}: p50 ${r.p50.toFixed(2)} p99 ${r.p99.toFixed(2)} ms, ${r.errors} errors | ${cpuRate(c0, c1, 10)} | gateway GC major ${pct('major')}, incremental ${pct('incremental')}, minor ${pct('minor')} | heap ${m1.heap.toFixed(0)} MiB, ${threadCount(pid)} threads | steal ${((s1 - s0) / 10).toFixed(0)} ms/s`,
      );
    };
    await phase('before 1');
    await phase('before 2');
    for (let b = 1; b <= BURSTS; b++) {
      const [rest, grpc] = await Promise.all([
        closedLoop(cls, 32, 24),
        grpcClosedLoop(`127.0.0.1:${stack.grpcPort}`, resolve('dist/apps/gateway/src/grpc/proto'), 16, 24, 1, stack.key),
      ]);
      say(`burst ${b}: REST ${rest.rps.toFixed(0)} req/s (${rest.errors} errors), gRPC ${grpc.itemsS.toFixed(0)} req/s (${grpc.errors} errors)`);
      for (let i = 1; i <= 3; i++) await phase(`after burst ${b}, phase ${i}`);
    }
    say(
      JSON.stringify({
        bench: 'gc-drift',
        p99_first_ms: Number(worst[1]!.toFixed(2)),
        p99_worst_after_bursts_ms: Number(Math.max(...worst.slice(2)).toFixed(2)),
      }),
    );
  } finally {
    load.stop();
    await stack.stop();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:gc-drift failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
