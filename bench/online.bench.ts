import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import Fastify from 'fastify';
import { InferenceSession, Tensor } from 'onnxruntime-node';

/**
 * `npm run bench:online`. Servers (the gateway, the plain-Fastify baseline) run as child
 * processes, like in production; the load generator is this process (node:http, keep-alive,
 * closed loop at fixed concurrency, or open loop at a constant rate).
 * Environment (bench entry points may read it): DATABASE_URL, REDIS_URL, BENCH_SECONDS.
 */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
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

// ---------- load generation ----------
const freePort = (): Promise<number> =>
  new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? res(a.port) : rej(new Error('no port'))));
    });
  });

interface Target {
  port: number;
  path: string;
  body: Buffer;
  headers: Record<string, string>;
}

function post(agent: Agent, t: Target): Promise<number> {
  return new Promise((res, rej) => {
    const req = request({ host: '127.0.0.1', port: t.port, path: t.path, method: 'POST', agent, headers: { ...t.headers, 'content-length': t.body.length } }, (r) => {
      r.on('data', () => undefined);
      r.on('end', () => res(r.statusCode ?? 0));
      r.on('error', rej);
    });
    req.on('error', rej);
    req.end(t.body);
  });
}

interface LoadResult {
  ok: number;
  errors: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
}

function summarize(lat: number[], ok: number, errors: number, seconds: number): LoadResult {
  lat.sort((a, b) => a - b);
  const q = (p: number): number => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]! : NaN);
  return { ok, errors, seconds, rps: ok / seconds, p50: q(0.5), p99: q(0.99) };
}

async function closedLoop(t: Target, concurrency: number, seconds: number): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const lat: number[] = [];
  let ok = 0;
  let errors = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        const status = await post(agent, t).catch(() => 0);
        if (status === 200) {
          ok++;
          lat.push(performance.now() - t0);
        } else errors++;
      }
    }),
  );
  agent.destroy();
  return summarize(lat, ok, errors, (performance.now() - start) / 1000);
}

/** Open loop: requests start on a fixed schedule; latency counts from the scheduled time. */
async function openLoop(t: Target, rate: number, seconds: number): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 512 });
  const lat: number[] = [];
  let ok = 0;
  let errors = 0;
  const total = Math.floor(rate * seconds);
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  let sent = 0;
  while (sent < total) {
    const now = performance.now();
    const due = Math.min(total, Math.floor(((now - start) / 1000) * rate) + 1);
    for (; sent < due; sent++) {
      const scheduled = start + (sent / rate) * 1000;
      inflight.push(
        post(agent, t).then(
          (s) => {
            if (s === 200) {
              ok++;
              lat.push(performance.now() - scheduled);
            } else errors++;
          },
          () => void errors++,
        ),
      );
    }
    await new Promise((r) => setTimeout(r, Math.max(0, start + (sent / rate) * 1000 - performance.now())));
  }
  await Promise.all(inflight);
  agent.destroy();
  return summarize(lat, ok, errors, seconds);
}

// ---------- servers ----------
async function spawnServer(args: string[], env: NodeJS.ProcessEnv, readyUrl?: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((res, rej) => {
    const deadline = Date.now() + 60_000;
    child.once('exit', (c) => rej(new Error(`server exited with ${c}`)));
    child.stdout!.on('data', (d: Buffer) => {
      if (!readyUrl && d.toString().includes('ready')) res();
    });
    if (readyUrl) {
      const poll = (): void => {
        fetch(readyUrl)
          .then((r) => (r.ok ? res() : Promise.reject(new Error(String(r.status)))))
          .catch(() => (Date.now() > deadline ? rej(new Error(`not ready: ${readyUrl}`)) : setTimeout(poll, 200)));
      };
      poll();
    }
  });
  child.stdout!.resume();
  return child;
}

async function rawCls(): Promise<{ best: number; bestBatch: number }> {
  const session = await InferenceSession.create(CLS_MODEL);
  let best = 0;
  let bestBatch = 1;
  for (const b of (process.env.BENCH_CLS_ONLY ? [32] : [1, 8, 32, 64])) {
    const x = new Tensor('float32', Float32Array.from({ length: b * CLS_ITEM }, (_, i) => (i % 255) / 255), [b, 3, 48, 192]);
    for (let i = 0; i < 3; i++) await session.run({ x });
    let items = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < (SECONDS * 1000) / 3) {
      await session.run({ x });
      items += b;
    }
    const ips = items / ((performance.now() - t0) / 1000);
    say(`raw onnxruntime cls b=${b}: ${ips.toFixed(0)} items/s`);
    if (ips > best) [best, bestBatch] = [ips, b];
  }
  await session.release();
  return { best, bestBatch };
}

function clsBinaryTarget(port: number): Target {
  const x = Float32Array.from({ length: CLS_ITEM }, (_, i) => ((i * 7919) % 1000) / 1000);
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'x', shape: [1, 3, 48, 192], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }],
      outputs: [{ name: 'softmax_0.tmp_0', parameters: { binary_data: true } }],
    }),
  );
  return {
    port,
    path: '/v2/models/ppocr_cls/infer',
    body: Buffer.concat([header, Buffer.from(x.buffer)]),
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
  };
}

/** Mean merged batch size and replica busy time from the gateway's own /metrics. */
async function batchStats(port: number): Promise<string> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const v = (name: string): number => Number(new RegExp(`^${name}\\{model="ppocr_cls"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  const batches = v('tandem_inference_batch_size_count');
  return `gateway ran ${batches} batches, mean ${(v('tandem_inference_batch_size_sum') / batches).toFixed(1)} items, compute ${v('tandem_inference_compute_seconds_sum').toFixed(1)} s`;
}

const fmt = (r: LoadResult): string => `${r.rps.toFixed(0)}/s p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms (${r.errors} errors)`;

async function main(): Promise<void> {
  say(`bench:online — ${SECONDS}s per phase; servers in child processes, load generator in this process`);
  const raw = await rawCls();
  say(`raw onnxruntime cls best: b=${raw.bestBatch} ${raw.best.toFixed(0)} items/s`);

  const gwPort = await freePort();
  const gateway = await spawnServer(
    ['dist/apps/gateway/src/main.js'],
    {
      ...process.env,
      GATEWAY_PORT: String(gwPort),
      GATEWAY_GRPC_PORT: String(await freePort()),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      DATABASE_URL: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
      MODEL_REPOSITORY: process.env.BENCH_MODEL_REPOSITORY ?? 'models',
    },
    `http://127.0.0.1:${gwPort}/v2/health/ready`,
  );
  try {
    const cls = clsBinaryTarget(gwPort);
    await closedLoop(cls, 32, 2);
    const gw = await closedLoop(cls, 32, SECONDS);
    say(`gateway cls binary REST c=32: ${gw.rps.toFixed(0)} items/s, p50 ${gw.p50.toFixed(1)} ms, p99 ${gw.p99.toFixed(1)} ms (${gw.errors} errors)`);
    const ratioCls = gw.rps / raw.best;
    say(`ratio cls gateway/raw: ${ratioCls.toFixed(3)} (target >= 0.85); ${await batchStats(gwPort)}`);
    if (process.env.BENCH_CLS_ONLY) return;

    const scorer: Target = {
      port: gwPort,
      path: '/v2/models/scorer/infer',
      body: Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [1, 1], datatype: 'FP32', data: [0.5] }] })),
      headers: { 'content-type': 'application/json' },
    };
    await closedLoop(scorer, 64, 2);
    const sc = await closedLoop(scorer, 64, SECONDS);
    say(`gateway scorer JSON c=64: ${fmt(sc)}`);

    const half = gw.rps / 2;
    const open = await openLoop(cls, half, SECONDS);
    say(`gateway cls open loop at ${half.toFixed(0)} req/s (50% of saturation): p50 ${open.p50.toFixed(2)} ms p99 ${open.p99.toFixed(2)} ms (${open.errors} errors)`);
    gateway.kill('SIGTERM');

    const fPort = await freePort();
    const baseline = await spawnServer([__filename, '--fastify-baseline', String(fPort)], process.env);
    const fTarget: Target = { port: fPort, path: '/score', body: Buffer.from('{"x":0.5}'), headers: { 'content-type': 'application/json' } };
    await closedLoop(fTarget, 64, 2);
    const fst = await closedLoop(fTarget, 64, SECONDS);
    baseline.kill('SIGTERM');
    say(`plain Fastify scorer c=64: ${fmt(fst)}`);
    const ratioScorer = sc.rps / fst.rps;
    say(`ratio scorer gateway/fastify: ${ratioScorer.toFixed(3)} (target >= 0.6)`);
    say(`p99 at half load: ${open.p99.toFixed(2)} ms (target <= 50 ms)`);
    const r = (v: number, d = 1): number => Number(v.toFixed(d));
    say(
      JSON.stringify({
        bench: 'online',
        raw_items_s: r(raw.best),
        raw_best_batch: raw.bestBatch,
        gateway_items_s: r(gw.rps),
        ratio_cls: r(ratioCls, 3),
        scorer_req_s: r(sc.rps),
        scorer_p50_ms: r(sc.p50, 2),
        scorer_p99_ms: r(sc.p99, 2),
        fastify_req_s: r(fst.rps),
        ratio_scorer: r(ratioScorer, 3),
        p50_ms_half_load: r(open.p50, 2),
        p99_ms_half_load: r(open.p99, 2),
      }),
    );
  } finally {
    if (gateway.exitCode === null) gateway.kill('SIGKILL');
  }
}

if (process.argv[2] === '--fastify-baseline') void fastifyBaseline();
else
  main().catch((e: unknown) => {
    process.stderr.write(`bench:online failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  });
