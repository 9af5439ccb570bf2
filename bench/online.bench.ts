import 'reflect-metadata';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import Fastify from 'fastify';
import { randomBytes } from 'node:crypto';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { sessionOptionsFor } from '@tandem/inference';
import { chooseAllocator } from '../scripts/launcher/allocator-env';
import { autoscaleTrace, grpcClosedLoop } from './online-grpc-autoscale.bench-part';
import { clsInferMessage, grpcRawClosedLoop } from './support/grpc-load';
import { grpcAgainstRest, grpcOverload } from './online-grpc.bench-part';
import { clsAgainstRaw, clsBatchCounters } from './online-cls.bench-part';
import { overload } from './online-overload.bench-part';
import { benchDatabase, closedLoop, clsBinaryTarget, freePort, openLoop, spawnServer, type LoadResult, type Target } from './support/http-load';
import { cpuSeconds } from './support/proc-stat';
import { median } from './support/stats';

/**
 * `npm run bench:online`. Servers (the gateway, the plain-Fastify baseline) run as child
 * processes, like in production; the load generator is this process (node:http, keep-alive,
 * closed loop at fixed concurrency, or open loop at a constant rate).
 * Environment (bench entry points may read it): DATABASE_URL, REDIS_URL, BENCH_SECONDS,
 * BENCH_ROUNDS, BENCH_MODEL_REPOSITORY, BENCH_ONLY=overload|grpc|grpc-overload (only that phase, against the
 * shipped gateway: no raw scan, no baseline ratios; for before/after checks of one change, with
 * BENCH_GATEWAY_MAIN naming another build's dist/apps/gateway/src/main.js), BENCH_ONLY=cls (REST
 * binary against raw onnxruntime only; BENCH_COMPARE_GATEWAY_MAIN adds another build,
 * BENCH_COMPARE_MODEL_REPOSITORY a second gateway on
 * that model repository, measured in the same rounds).
 */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CLS_MODEL = resolve('models/ppocr_cls/1/model.onnx');
const CLS_ITEM = 3 * 48 * 192;
const say = (s: string): void => void process.stdout.write(`${s}\n`);

// ---------- plain Fastify baseline (child role) ----------
async function fastifyBaseline(): Promise<void> {
  const app = Fastify({ logger: false });
  app.post('/score', async (req) => ({ score: Math.tanh((req.body as { x: number }).x) }));
  await app.listen({ port: Number(process.argv[3]), host: '127.0.0.1' });
  process.stdout.write('ready\n');
}

/**
 * The replica's own session options (models/ppocr_cls/config.json: one replica, 2 intra-op
 * threads, no spinning, memory arena on): the like-for-like baseline for the gateway.
 */
const REPLICA_OPTIONS = sessionOptionsFor({ kind: 'cpu', intraOpThreads: 2 }, { allowSpinning: false, memoryArena: true });
/** Raw configurations scanned for the ceiling: onnxruntime's defaults (spinning, all cores) and the replica's with spinning. */
const CEILING_OPTIONS: Record<string, InferenceSession.SessionOptions> = {
  default: {},
  'replica+spinning': sessionOptionsFor({ kind: 'cpu', intraOpThreads: 2 }, { allowSpinning: true, memoryArena: true }),
};

/** Raw onnxruntime-node with `options` at each batch size; keeps the best. */
async function rawCls(
  sizes: number[],
  seconds: number,
  options: InferenceSession.SessionOptions = REPLICA_OPTIONS,
  label = 'replica options',
): Promise<{ best: number; bestBatch: number; cpuMsPerItem: number }> {
  const session = await InferenceSession.create(CLS_MODEL, options);
  let best = 0;
  let bestBatch = 1;
  let cpuMsPerItem = NaN;
  for (const b of sizes) {
    const x = new Tensor(
      'float32',
      Float32Array.from({ length: b * CLS_ITEM }, (_, i) => (i % 255) / 255),
      [b, 3, 48, 192],
    );
    for (let i = 0; i < 3; i++) await session.run({ x });
    let items = 0;
    const cpu0 = cpuSeconds(process.pid);
    const t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000) {
      await session.run({ x });
      items += b;
    }
    const ips = items / ((performance.now() - t0) / 1000);
    say(`raw onnxruntime cls (${label}) b=${b}: ${ips.toFixed(0)} items/s`);
    if (ips > best) [best, bestBatch, cpuMsPerItem] = [ips, b, ((cpuSeconds(process.pid) - cpu0) * 1000) / items];
  }
  await session.release();
  return { best, bestBatch, cpuMsPerItem };
}

/** Mean merged batch size and replica busy time from the gateway's own /metrics. */
async function batchStats(port: number): Promise<string> {
  const { batches, rows, computeS } = await clsBatchCounters(port);
  return `gateway ran ${batches} batches, mean ${(rows / batches).toFixed(1)} items, compute ${computeS.toFixed(1)} s`;
}

const fmt = (r: LoadResult): string => `${r.rps.toFixed(0)}/s p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms (${r.errors} errors)`;

async function main(): Promise<void> {
  say(`bench:online — ${ROUNDS} interleaved rounds of ${SECONDS}s phases; servers in child processes, load generator in this process`);
  const only = process.env.BENCH_ONLY;
  if (only === 'overload' || only === 'grpc' || only === 'grpc-overload') return onePhase(only);
  if (only === 'cls') return clsOnly();
  const scan = await rawCls([1, 8, 32, 64], Math.max(1, SECONDS / 2));
  say(`raw onnxruntime cls (replica options) best batch: b=${scan.bestBatch}`);
  // The ceiling: the best raw configuration found, whatever its options (not what the gateway runs).
  let ceiling = { items: scan.best, config: `replica options b=${scan.bestBatch}` };
  for (const [label, o] of Object.entries(CEILING_OPTIONS)) {
    const r = await rawCls([8, 32, 64], Math.max(1, SECONDS / 2), o, label);
    if (r.best > ceiling.items) ceiling = { items: r.best, config: `${label} b=${r.bestBatch}` };
  }
  say(`raw onnxruntime cls ceiling: ${ceiling.items.toFixed(0)} items/s (${ceiling.config})`);
  const key = `tdm_bench_${randomBytes(12).toString('hex')}`;

  const databaseUrl = await benchDatabase('tandem_bench_online', process.env.DATABASE_URL);
  const gwPort = await freePort();
  const grpcPort = await freePort();
  const fPort = await freePort();
  const gateway = await startShippedGateway('dist/apps/gateway/src/main.js', gwPort, grpcPort, key, databaseUrl);
  const baseline = await spawnServer([__filename, '--fastify-baseline', String(fPort)], process.env);
  try {
    const cls = clsBinaryTarget(gwPort, key);
    const scorer: Target = {
      port: gwPort,
      path: '/v2/models/scorer/infer',
      body: Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [1, 1], datatype: 'FP32', data: [0.5] }] })),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    };
    const fTarget: Target = { port: fPort, path: '/score', body: Buffer.from('{"x":0.5}'), headers: { 'content-type': 'application/json' } };
    await closedLoop(cls, 32, 2);
    await closedLoop(scorer, 64, 1);
    await closedLoop(fTarget, 64, 1);

    // This box is shared and its load drifts within seconds: each round measures subject and
    // baseline back to back, ratios are per round, and the medians are reported.
    const rounds: { raw: number; gw: LoadResult; sc: LoadResult; fst: LoadResult }[] = [];
    for (let i = 1; i <= ROUNDS; i++) {
      const raw = (await rawCls([scan.bestBatch], SECONDS)).best;
      const [gwCpu0, lgCpu0] = [cpuSeconds(gateway.pid!), cpuSeconds(process.pid)];
      const gw = await closedLoop(cls, 32, SECONDS);
      const gwCpu = ((cpuSeconds(gateway.pid!) - gwCpu0) * 1000) / gw.ok;
      const lgCpu = ((cpuSeconds(process.pid) - lgCpu0) * 1000) / gw.ok;
      const sc = await closedLoop(scorer, 64, SECONDS);
      const fst = await closedLoop(fTarget, 64, SECONDS);
      rounds.push({ raw, gw, sc, fst });
      say(
        `round ${i}: cls raw b=${scan.bestBatch} ${raw.toFixed(0)} items/s | gateway binary c=32 ${gw.rps.toFixed(0)} items/s p50 ${gw.p50.toFixed(1)} p99 ${gw.p99.toFixed(1)} ms` +
          ` (${gw.errors} errors; cpu ms/item gateway ${gwCpu.toFixed(2)}, load generator ${lgCpu.toFixed(2)}) | ratio ${(gw.rps / raw).toFixed(3)}`,
      );
      say(`round ${i}: scorer gateway JSON c=64 ${fmt(sc)} | plain Fastify ${fmt(fst)} | ratio ${(sc.rps / fst.rps).toFixed(3)}`);
    }
    say(await batchStats(gwPort));
    const rawMed = median(rounds.map((x) => x.raw));
    const gwMed = median(rounds.map((x) => x.gw.rps));
    const ratioCls = median(rounds.map((x) => x.gw.rps / x.raw));
    const ratioCeiling = gwMed / ceiling.items;
    const scMed = median(rounds.map((x) => x.sc.rps));
    const fMed = median(rounds.map((x) => x.fst.rps));
    const ratioScorer = median(rounds.map((x) => x.sc.rps / x.fst.rps));

    const half = gwMed / 2;
    const open = await openLoop(cls, half, SECONDS * 2);
    say(
      `gateway cls open loop at ${half.toFixed(0)} req/s (50% of median saturation): p50 ${open.p50.toFixed(2)} ms p99 ${open.p99.toFixed(2)} ms (${open.errors} errors)`,
    );

    say(
      `median raw cls ${rawMed.toFixed(0)} items/s, gateway ${gwMed.toFixed(0)} items/s; median ratio cls ${ratioCls.toFixed(3)} (target >= 0.85); gateway / ceiling ${ratioCeiling.toFixed(3)}`,
    );
    say(`median scorer ${scMed.toFixed(0)} req/s, plain Fastify ${fMed.toFixed(0)} req/s; median ratio scorer ${ratioScorer.toFixed(3)} (target >= 0.6)`);
    say(`p99 at half load: ${open.p99.toFixed(2)} ms (target <= 50 ms)`);

    // Heavy overload (issue 20): 600 clients vs 32, admitted latency only.
    const over = await overload(cls, SECONDS, ROUNDS, say, gateway.pid!);
    const overRatio = median(over.map((o) => o.ratio));
    const overP99 = median(over.map((o) => o.c600.p99));
    const backoffRatio = median(over.map((o) => o.c600Backoff.rps / o.c32.rps));
    say(
      `median overload goodput ratio c=600 / c=32 ${overRatio.toFixed(3)} (target >= 0.9), admitted p99 at c=600 ${overP99.toFixed(0)} ms (target <= 1000); clients honouring Retry-After: ratio ${backoffRatio.toFixed(3)}, p99 ${median(over.map((o) => o.c600Backoff.p99)).toFixed(0)} ms`,
    );

    // gRPC beside REST binary, same model, same concurrency, back to back.
    const protoDir = resolve('dist/apps/gateway/src/grpc/proto');
    // Two gRPC clients: a raw HTTP/2 one (like the REST client, see bench/support/grpc-load.ts) and grpc-js's.
    const grpcAddr = `127.0.0.1:${grpcPort}`;
    const message = clsInferMessage(protoDir);
    await grpcClosedLoop(grpcAddr, protoDir, 32, 1, 1, key);
    await grpcRawClosedLoop(grpcAddr, message, 32, 1, key);
    const grpcRaw = await grpcRawClosedLoop(grpcAddr, message, 32, SECONDS, key);
    const grpc = await grpcClosedLoop(grpcAddr, protoDir, 32, SECONDS, 1, key);
    const restAgain = await closedLoop(cls, 32, SECONDS);
    say(
      `gRPC raw contents cls c=32: raw HTTP/2 client ${grpcRaw.rps.toFixed(0)} items/s p99 ${grpcRaw.p99.toFixed(1)} ms (${grpcRaw.errors} errors), ` +
        `grpc-js client ${grpc.itemsS.toFixed(0)} items/s p50 ${grpc.p50.toFixed(1)} p99 ${grpc.p99.toFixed(1)} ms (${grpc.errors} errors) | REST binary ${restAgain.rps.toFixed(0)} items/s | ` +
        `ratio grpc/rest: raw client ${(grpcRaw.rps / restAgain.rps).toFixed(3)}, grpc-js ${(grpc.itemsS / restAgain.rps).toFixed(3)} (single round: BENCH_ONLY=grpc interleaves rounds)`,
    );
    gateway.kill('SIGTERM');
    baseline.kill('SIGTERM');
    const trace = await autoscaleTrace({
      distRoot: resolve('dist'),
      env: { ...process.env, DATABASE_URL: databaseUrl, QUEUE_PREFIX: 'benchautoscale' },
      stepSeconds: Math.max(6, SECONDS * 2),
      say,
      key,
    });
    say(`autoscale timeline (s:replicas): ${trace.timeline.map((p) => `${p.t}:${p.replicas}`).join(' ')}`);
    const r = (v: number, d = 1): number => Number(v.toFixed(d));
    say(
      JSON.stringify({
        bench: 'online',
        raw_items_s: r(rawMed),
        raw_best_batch: scan.bestBatch,
        raw_ceiling_items_s: r(ceiling.items),
        raw_ceiling_config: ceiling.config,
        gateway_items_s: r(gwMed),
        ratio_cls: r(ratioCls, 3),
        ratio_ceiling: r(ratioCeiling, 3),
        scorer_req_s: r(scMed),
        scorer_p50_ms: r(median(rounds.map((x) => x.sc.p50)), 2),
        scorer_p99_ms: r(median(rounds.map((x) => x.sc.p99)), 2),
        fastify_req_s: r(fMed),
        ratio_scorer: r(ratioScorer, 3),
        p50_ms_half_load: r(open.p50, 2),
        p99_ms_half_load: r(open.p99, 2),
        overload_ratio: r(overRatio, 3),
        overload_c600_p99_ms: r(overP99, 1),
        overload_c600_rejected_s: r(median(over.map((o) => o.c600.errors / o.c600.seconds))),
        overload_backoff_ratio: r(backoffRatio, 3),
        grpc_raw_client_items_s: r(grpcRaw.rps),
        grpc_items_s: r(grpc.itemsS),
        grpc_p99_ms: r(grpc.p99, 2),
        rest_binary_items_s: r(restAgain.rps),
        autoscale: trace.steps,
      }),
    );
  } finally {
    gateway.kill('SIGTERM');
    baseline.kill('SIGTERM');
  }
}

/** BENCH_ONLY: one issue-20 phase against the shipped gateway (ppocr_cls, auth on). */
async function onePhase(only: 'overload' | 'grpc' | 'grpc-overload'): Promise<void> {
  const key = `tdm_bench_${randomBytes(12).toString('hex')}`;
  const databaseUrl = await benchDatabase('tandem_bench_online', process.env.DATABASE_URL);
  const [gwPort, grpcPort] = [await freePort(), await freePort()];
  const gateway = await startShippedGateway(process.env.BENCH_GATEWAY_MAIN ?? 'dist/apps/gateway/src/main.js', gwPort, grpcPort, key, databaseUrl);
  try {
    const cls = clsBinaryTarget(gwPort, key);
    await closedLoop(cls, 32, 2);
    if (only === 'overload') {
      const over = await overload(cls, SECONDS, ROUNDS, say, gateway.pid!);
      say(
        `median overload goodput ratio c=600 / c=32 ${median(over.map((o) => o.ratio)).toFixed(3)}, admitted p99 ${median(over.map((o) => o.c600.p99)).toFixed(0)} ms; ` +
          `honouring Retry-After: ratio ${median(over.map((o) => o.c600Backoff.rps / o.c32.rps)).toFixed(3)}, p99 ${median(over.map((o) => o.c600Backoff.p99)).toFixed(0)} ms`,
      );
      return;
    }
    const protoDir = resolve('dist/apps/gateway/src/grpc/proto');
    const addr = `127.0.0.1:${grpcPort}`;
    const message = clsInferMessage(protoDir);
    if (only === 'grpc-overload')
      return await grpcOverload({ addr, protoDir, message, key, gatewayPid: gateway.pid!, cls, rounds: ROUNDS, seconds: SECONDS, say });
    await grpcAgainstRest({ addr, protoDir, message, key, gatewayPid: gateway.pid!, cls, rounds: ROUNDS, seconds: SECONDS, say });
  } finally {
    gateway.kill('SIGTERM');
  }
}

/**
 * BENCH_ONLY=cls: the shipped gateway against raw onnxruntime, interleaved; a second gateway on
 * BENCH_COMPARE_MODEL_REPOSITORY, or another build (BENCH_COMPARE_GATEWAY_MAIN: its
 * dist/apps/gateway/src/main.js), runs in the same rounds.
 */
async function clsOnly(): Promise<void> {
  const scan = await rawCls([8, 32, 64], 1);
  const key = `tdm_bench_${randomBytes(12).toString('hex')}`;
  const repo0 = process.env.BENCH_MODEL_REPOSITORY ?? 'models';
  const main0 = process.env.BENCH_GATEWAY_MAIN ?? 'dist/apps/gateway/src/main.js';
  const cmpRepo = process.env.BENCH_COMPARE_MODEL_REPOSITORY;
  const cmpMain = process.env.BENCH_COMPARE_GATEWAY_MAIN;
  const runs = [{ repo: repo0, main: main0, label: 'gateway' }];
  if (cmpRepo || cmpMain) runs.push({ repo: cmpRepo ?? repo0, main: cmpMain ?? main0, label: cmpMain ? `gateway(${cmpMain})` : `gateway(${cmpRepo})` });
  const subjects = [];
  try {
    for (const [k, { repo, main, label }] of runs.entries()) {
      // Each gateway has its own database: two on one ledger would share (and fight over) the device.
      const db = await benchDatabase(`tandem_bench_online${k ? `_${k}` : ''}`, k ? undefined : process.env.DATABASE_URL);
      const [gwPort, grpcPort] = [await freePort(), await freePort()];
      const gateway = await startShippedGateway(main, gwPort, grpcPort, key, db, { repo, queuePrefix: `benchonline${k}` });
      subjects.push({ label, gateway, cls: clsBinaryTarget(gwPort, key) });
    }
    say(`raw onnxruntime cls (replica options) best batch: b=${scan.bestBatch}`);
    const raw = async (s: number, batch = scan.bestBatch): Promise<{ itemsS: number; cpuUsPerItem: number }> => {
      const r = await rawCls([batch], s);
      return { itemsS: r.best, cpuUsPerItem: r.cpuMsPerItem * 1000 };
    };
    await clsAgainstRaw({ subjects, raw, rounds: ROUNDS, seconds: SECONDS, say });
  } finally {
    for (const s of subjects) s.gateway.kill('SIGTERM');
  }
}

if (process.argv[2] === '--fastify-baseline') void fastifyBaseline();
else
  main().catch((e: unknown) => {
    process.stderr.write(`bench:online failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  });

/** The gateway as shipped (authentication on: every request carries the bench admin key; the launcher's allocator), in a child process. */
function startShippedGateway(
  main: string,
  gwPort: number,
  grpcPort: number,
  key: string,
  databaseUrl: string,
  opts: { repo?: string; queuePrefix?: string } = {},
): ReturnType<typeof spawnServer> {
  // BENCH_GATEWAY_NODE_ARGS: node flags for the gateway (e.g. --cpu-prof --cpu-prof-dir=…; NODE_OPTIONS refuses --cpu-prof).
  const nodeArgs = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
  return spawnServer(
    [...nodeArgs, main],
    {
      ...process.env,
      ...chooseAllocator('glibc', process.env).env,
      GATEWAY_PORT: String(gwPort),
      GATEWAY_GRPC_PORT: String(grpcPort),
      HOST: '127.0.0.1',
      TANDEM_ADMIN_KEY: key,
      DATABASE_URL: databaseUrl,
      QUEUE_PREFIX: opts.queuePrefix ?? 'benchonline',
      MODEL_REPOSITORY: opts.repo ?? process.env.BENCH_MODEL_REPOSITORY ?? 'models',
    },
    `http://127.0.0.1:${gwPort}/v2/health/ready`,
  );
}
