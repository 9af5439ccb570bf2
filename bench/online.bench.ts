import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import Fastify from 'fastify';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { Client } from 'pg';
import { runMigrations } from '@tandem/persistence';
import { autoscaleTrace, grpcClosedLoop } from './online-grpc-autoscale.bench-part';

/**
 * `npm run bench:online`. Servers (the gateway, the plain-Fastify baseline) run as child
 * processes, like in production; the load generator is this process (node:http, keep-alive,
 * closed loop at fixed concurrency, or open loop at a constant rate).
 * Environment (bench entry points may read it): DATABASE_URL, REDIS_URL, BENCH_SECONDS,
 * BENCH_ROUNDS, BENCH_MODEL_REPOSITORY.
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

/**
 * A minimal HTTP/1.1 keep-alive connection (like wrk): the request bytes are serialized once
 * and written as-is; the response is parsed only for status and Content-Length. node:http's
 * client costs more CPU per request than the gateway's own overhead on this 2-core box.
 */
class Conn {
  private sock: Socket;
  private buf: Buffer = Buffer.alloc(0);
  private waiter: ((status: number) => void) | undefined;
  private failer: ((e: Error) => void) | undefined;

  constructor(port: number) {
    this.sock = connect({ host: '127.0.0.1', port, noDelay: true });
    this.sock.on('data', (d: Buffer) => this.onData(d));
    this.sock.on('error', (e) => this.failer?.(e));
    this.sock.on('close', () => this.failer?.(new Error('connection closed')));
  }

  send(raw: Buffer): Promise<number> {
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.failer = reject;
      this.sock.write(raw);
    });
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.buf.toString('latin1', 0, end);
    const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (this.buf.length < end + 4 + len) return;
    this.buf = this.buf.subarray(end + 4 + len);
    const status = Number(head.slice(9, 12));
    const w = this.waiter;
    this.waiter = undefined;
    this.failer = undefined;
    w?.(status);
  }

  close(): void {
    this.sock.destroy();
  }
}

function rawRequest(t: Target): Buffer {
  const head = Object.entries({ ...t.headers, 'content-length': String(t.body.length) })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return Buffer.concat([Buffer.from(`POST ${t.path} HTTP/1.1\r\nhost: 127.0.0.1:${t.port}\r\n${head}\r\n`, 'latin1'), t.body]);
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
  const raw = rawRequest(t);
  const lat: number[] = [];
  let ok = 0;
  let errors = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      let conn = new Conn(t.port);
      while (performance.now() < end) {
        const t0 = performance.now();
        const status = await conn.send(raw).catch(() => {
          conn.close();
          conn = new Conn(t.port);
          return 0;
        });
        if (status === 200) {
          ok++;
          lat.push(performance.now() - t0);
        } else errors++;
      }
      conn.close();
    }),
  );
  return summarize(lat, ok, errors, (performance.now() - start) / 1000);
}

/** Open loop: requests start on a fixed schedule; latency counts from the scheduled time. */
async function openLoop(t: Target, rate: number, seconds: number): Promise<LoadResult> {
  const raw = rawRequest(t);
  const idle: Conn[] = [];
  const all: Conn[] = [];
  const post = async (): Promise<number> => {
    let c = idle.pop();
    if (!c) {
      c = new Conn(t.port);
      all.push(c);
    }
    const status = await c.send(raw);
    idle.push(c);
    return status;
  };
  const lat: number[] = [];
  let ok = 0;
  let errors = 0;
  const statuses: Record<string, number> = {};
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
        post().then(
          (s) => {
            if (s === 200) {
              ok++;
              lat.push(performance.now() - scheduled);
            } else {
              errors++;
              statuses[s] = (statuses[s] ?? 0) + 1;
            }
          },
          (e: Error) => {
            errors++;
            statuses[e.message] = (statuses[e.message] ?? 0) + 1;
          },
        ),
      );
    }
    await new Promise((r) => setTimeout(r, Math.max(0, start + (sent / rate) * 1000 - performance.now())));
  }
  await Promise.all(inflight);
  for (const c of all) c.close();
  if (errors > 0) say(`open loop errors: ${JSON.stringify(statuses)}; connections opened: ${all.length}`);
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

/** Raw onnxruntime-node (default session options, like the peer figure) at each batch size; keeps the best. */
async function rawCls(sizes: number[], seconds: number): Promise<{ best: number; bestBatch: number; cpuMsPerItem: number }> {
  const session = await InferenceSession.create(CLS_MODEL);
  let best = 0;
  let bestBatch = 1;
  let cpuMsPerItem = NaN;
  for (const b of sizes) {
    const x = new Tensor('float32', Float32Array.from({ length: b * CLS_ITEM }, (_, i) => (i % 255) / 255), [b, 3, 48, 192]);
    for (let i = 0; i < 3; i++) await session.run({ x });
    let items = 0;
    const cpu0 = cpuSeconds(process.pid);
    const t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000) {
      await session.run({ x });
      items += b;
    }
    const ips = items / ((performance.now() - t0) / 1000);
    say(`raw onnxruntime cls b=${b}: ${ips.toFixed(0)} items/s`);
    if (ips > best) [best, bestBatch, cpuMsPerItem] = [ips, b, ((cpuSeconds(process.pid) - cpu0) * 1000) / items];
  }
  await session.release();
  return { best, bestBatch, cpuMsPerItem };
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

/** CPU seconds (user+sys, all threads) a process has used so far, from /proc. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Mean merged batch size and replica busy time from the gateway's own /metrics. */
async function batchStats(port: number): Promise<string> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const v = (name: string): number => Number(new RegExp(`^${name}\\{model="ppocr_cls"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  const batches = v('tandem_inference_batch_size_count');
  return `gateway ran ${batches} batches, mean ${(v('tandem_inference_batch_size_sum') / batches).toFixed(1)} items, compute ${v('tandem_inference_compute_seconds_sum').toFixed(1)} s`;
}

const fmt = (r: LoadResult): string => `${r.rps.toFixed(0)}/s p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms (${r.errors} errors)`;

/** A migrated database for the gateway child (the gateway's modules need the schema). */
async function benchDatabase(): Promise<string> {
  if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
  const admin = new Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await admin.connect();
  try {
    const exists = await admin.query(`SELECT 1 FROM pg_database WHERE datname = 'tandem_bench_online'`);
    if (exists.rowCount === 0) await admin.query('CREATE DATABASE tandem_bench_online');
  } finally {
    await admin.end();
  }
  const url = 'postgres://postgres@127.0.0.1:5432/tandem_bench_online';
  await runMigrations(url);
  return url;
}

const median = (xs: number[]): number => {
  const a = [...xs].sort((x, y) => x - y);
  return a.length % 2 ? a[(a.length - 1) / 2]! : (a[a.length / 2 - 1]! + a[a.length / 2]!) / 2;
};

async function main(): Promise<void> {
  say(`bench:online — ${ROUNDS} interleaved rounds of ${SECONDS}s phases; servers in child processes, load generator in this process`);
  const scan = await rawCls([1, 8, 32, 64], Math.max(1, SECONDS / 2));
  say(`raw onnxruntime cls best batch: b=${scan.bestBatch}`);

  const databaseUrl = await benchDatabase();
  const gwPort = await freePort();
  const grpcPort = await freePort();
  const fPort = await freePort();
  const gateway = await spawnServer(
    ['dist/apps/gateway/src/main.js'],
    {
      ...process.env,
      GATEWAY_PORT: String(gwPort),
      GATEWAY_GRPC_PORT: String(grpcPort),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      TANDEM_AUTH: 'off', // auth has its own tests (test/auth.e2e.spec.ts)
      DATABASE_URL: databaseUrl,
      QUEUE_PREFIX: 'benchonline',
      MODEL_REPOSITORY: process.env.BENCH_MODEL_REPOSITORY ?? 'models',
    },
    `http://127.0.0.1:${gwPort}/v2/health/ready`,
  );
  const baseline = await spawnServer([__filename, '--fastify-baseline', String(fPort)], process.env);
  try {
    const cls = clsBinaryTarget(gwPort);
    const scorer: Target = {
      port: gwPort,
      path: '/v2/models/scorer/infer',
      body: Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [1, 1], datatype: 'FP32', data: [0.5] }] })),
      headers: { 'content-type': 'application/json' },
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
    const scMed = median(rounds.map((x) => x.sc.rps));
    const fMed = median(rounds.map((x) => x.fst.rps));
    const ratioScorer = median(rounds.map((x) => x.sc.rps / x.fst.rps));

    const half = gwMed / 2;
    const open = await openLoop(cls, half, SECONDS * 2);
    say(`gateway cls open loop at ${half.toFixed(0)} req/s (50% of median saturation): p50 ${open.p50.toFixed(2)} ms p99 ${open.p99.toFixed(2)} ms (${open.errors} errors)`);

    say(`median raw cls ${rawMed.toFixed(0)} items/s, gateway ${gwMed.toFixed(0)} items/s; median ratio cls ${ratioCls.toFixed(3)} (target >= 0.85)`);
    say(`median scorer ${scMed.toFixed(0)} req/s, plain Fastify ${fMed.toFixed(0)} req/s; median ratio scorer ${ratioScorer.toFixed(3)} (target >= 0.6)`);
    say(`p99 at half load: ${open.p99.toFixed(2)} ms (target <= 50 ms)`);

    // gRPC beside REST binary, same model, same concurrency, back to back.
    const protoDir = resolve('dist/apps/gateway/src/grpc/proto');
    await grpcClosedLoop(`127.0.0.1:${grpcPort}`, protoDir, 32, 1);
    const grpc = await grpcClosedLoop(`127.0.0.1:${grpcPort}`, protoDir, 32, SECONDS);
    const restAgain = await closedLoop(cls, 32, SECONDS);
    say(
      `gRPC raw contents cls c=32: ${grpc.itemsS.toFixed(0)} items/s p50 ${grpc.p50.toFixed(1)} p99 ${grpc.p99.toFixed(1)} ms (${grpc.errors} errors) | REST binary ${restAgain.rps.toFixed(0)} items/s | ratio grpc/rest ${(grpc.itemsS / restAgain.rps).toFixed(3)}`,
    );
    gateway.kill('SIGTERM');
    baseline.kill('SIGTERM');
    const trace = await autoscaleTrace({ distRoot: resolve('dist'), env: { ...process.env, DATABASE_URL: databaseUrl, QUEUE_PREFIX: 'benchautoscale' }, stepSeconds: Math.max(6, SECONDS * 2), say });
    say(`autoscale timeline (s:replicas): ${trace.timeline.map((p) => `${p.t}:${p.replicas}`).join(' ')}`);
    const r = (v: number, d = 1): number => Number(v.toFixed(d));
    say(
      JSON.stringify({
        bench: 'online',
        raw_items_s: r(rawMed),
        raw_best_batch: scan.bestBatch,
        gateway_items_s: r(gwMed),
        ratio_cls: r(ratioCls, 3),
        scorer_req_s: r(scMed),
        scorer_p50_ms: r(median(rounds.map((x) => x.sc.p50)), 2),
        scorer_p99_ms: r(median(rounds.map((x) => x.sc.p99)), 2),
        fastify_req_s: r(fMed),
        ratio_scorer: r(ratioScorer, 3),
        p50_ms_half_load: r(open.p50, 2),
        p99_ms_half_load: r(open.p99, 2),
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

if (process.argv[2] === '--fastify-baseline') void fastifyBaseline();
else
  main().catch((e: unknown) => {
    process.stderr.write(`bench:online failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  });
