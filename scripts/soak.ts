import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { Client } from 'pg';
import { runMigrations } from '@tandem/persistence';
import { freePort } from './chaos/private-stores';
import { chooseAllocator } from './launcher/allocator-env';
import { loadLauncherConfig } from './launcher/launcher.config';
import { metricValue, rssMiB } from './support/process-probe';

/**
 * `npm run soak` (not in CI): SOAK_MINUTES (10) of open-loop online load at 70% of the
 * saturation measured with the batch stream running, on ppocr_cls, plus back-to-back score batches, against a gateway and a
 * batch app running as their own processes. Reports each process's RSS (with its V8 heap, external buffers and event-loop lag) every
 * SOAK_SAMPLE_SECONDS (10); fails on any
 * error or when the mean RSS of the last quarter exceeds the second quarter's by ≥ 10%.
 */
const env = process.env;
const MINUTES = Number(env.SOAK_MINUTES ?? 10);
const SAMPLE_MS = Number(env.SOAK_SAMPLE_SECONDS ?? 10) * 1000;
const ADMIN_URL = env.SOAK_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const say = (s: string): boolean => process.stdout.write(`[soak] ${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Where the memory is: V8 heap vs. buffers outside it (what is left of RSS is native: onnxruntime, malloc). */
interface ProcessMemory {
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
  lagMaxMs: number;
}
async function processMetrics(base: string): Promise<ProcessMemory | null> {
  try {
    const text = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
    const v = (name: string): number => metricValue(text, name);
    const mib = 1024 * 1024;
    return {
      heapUsedMiB: v('nodejs_heap_size_used_bytes') / mib,
      heapTotalMiB: v('nodejs_heap_size_total_bytes') / mib,
      externalMiB: v('nodejs_external_memory_bytes') / mib,
      lagMaxMs: v('nodejs_eventloop_lag_max_seconds') * 1000,
    };
  } catch {
    return null;
  }
}
const fmtProcess = (m: ProcessMemory | null): string =>
  m
    ? `heap ${m.heapUsedMiB.toFixed(0)}/${m.heapTotalMiB.toFixed(0)} external ${m.externalMiB.toFixed(0)} lag max ${m.lagMaxMs.toFixed(0)} ms`
    : 'metrics unavailable';

const ITEM = new Float32Array(3 * 48 * 192).fill(0.2);
const header = Buffer.from(
  JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], parameters: { binary_data_size: ITEM.byteLength } }] }),
);
const body = Buffer.concat([header, Buffer.from(ITEM.buffer)]);
/** Failed online requests by outcome: the HTTP status, or `timeout` / `network`. */
const failures: Record<string, number> = {};
async function infer(gw: string): Promise<boolean> {
  try {
    const r = await fetch(`${gw}/v2/models/ppocr_cls/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
      body,
      signal: AbortSignal.timeout(10_000),
    });
    await r.arrayBuffer();
    if (r.status !== 200) failures[r.status] = (failures[r.status] ?? 0) + 1;
    return r.status === 200;
  } catch (e) {
    const kind = e instanceof Error && e.name === 'TimeoutError' ? 'timeout' : 'network';
    failures[kind] = (failures[kind] ?? 0) + 1;
    return false;
  }
}

/**
 * The processes get the allocator `npm start` would give them (TANDEM_MALLOC, default glibc
 * with a fixed mmap threshold), unless the caller sets LD_PRELOAD / GLIBC_TUNABLES itself
 * (GLIBC_TUNABLES= for plain glibc; NODE_OPTIONS too) to compare settings under the same load.
 */
function allocatorEnv(): { env: Record<string, string>; description: string } {
  const own = Object.fromEntries(
    Object.entries(env).filter((e): e is [string, string] => /^(MALLOC_|GLIBC_TUNABLES$|LD_PRELOAD$|NODE_OPTIONS$)/.test(e[0]) && e[1] !== undefined),
  );
  if (Object.keys(own).length === 0) return chooseAllocator(loadLauncherConfig(env).malloc, env);
  return {
    env: own,
    description: Object.entries(own)
      .map(([k, v]) => `${k}=${v}`)
      .join(' '),
  };
}

async function main(): Promise<number> {
  const dbName = `tandem_soak_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${dbName}"`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${dbName}`;
  const procs: ChildProcess[] = [];
  try {
    await runMigrations(url.toString());
    const [gwPort, batchPort] = [await freePort(), await freePort()];
    const allocator = allocatorEnv();
    const common = {
      PATH: env.PATH ?? '',
      DATABASE_URL: url.toString(),
      REDIS_URL: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      QUEUE_PREFIX: `soak${randomBytes(3).toString('hex')}`,
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      TANDEM_AUTH: 'off',
      ...allocator.env,
    };
    const dist = resolve(__dirname, '..');
    const gwProc = spawn(process.execPath, [resolve(dist, 'apps/gateway/src/main.js')], {
      env: { ...common, GATEWAY_PORT: String(gwPort), GATEWAY_GRPC_PORT: String(await freePort()), MODEL_REPOSITORY: resolve(dist, '../models') },
      stdio: 'inherit',
    });
    const batchProc = spawn(process.execPath, [resolve(dist, 'apps/batch/src/main.js')], {
      env: { ...common, BATCH_PORT: String(batchPort), BATCH_CONCURRENCY: '1' },
      stdio: 'inherit',
    });
    procs.push(gwProc, batchProc);
    const gw = `http://127.0.0.1:${gwPort}`;
    const api = `http://127.0.0.1:${batchPort}`;
    for (const u of [gw, api]) {
      for (let i = 0; ; i++) {
        if (
          (await fetch(`${u}/v2/health/ready`).then(
            (r) => r.status,
            () => 0,
          )) === 200
        )
          break;
        if (i > 600) throw new Error(`${u} not ready`);
        await sleep(100);
      }
    }
    const atReady = { gateway: rssMiB(gwProc.pid!), batch: rssMiB(batchProc.pid!) };
    say(`ready: gateway RSS ${atReady.gateway.toFixed(0)} MiB, batch RSS ${atReady.batch.toFixed(0)} MiB; malloc: ${allocator.description}`);
    // The batch stream starts first: saturation is what online gets in the soak's own mix (a
    // co-located batch, its Postgres and Redis traffic), so 70 % of it leaves the headroom the
    // issue means. Measured against the gateway alone it left none on 2 cores.
    let ok = 0;
    let errors = 0;
    let batches = 0;
    let batchErrors = 0;
    let maxPending = 0;
    let end = Number.POSITIVE_INFINITY;
    const batch = (async () => {
      while (Date.now() < end) {
        const r = await fetch(`${api}/v1/batches`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ task: 'score', items: Array.from({ length: 20_000 }, (_, i) => i), reducer: 'summarize', chunkSize: 1_000 }),
        });
        if (r.status !== 201 && r.status !== 202) {
          batchErrors++;
          continue;
        }
        const id = ((await r.json()) as { id: string }).id;
        for (;;) {
          const b = (await (await fetch(`${api}/v1/batches/${id}`)).json()) as { state: string; result: { sum: string } | null };
          if (b.state === 'succeeded') {
            if (b.result?.sum !== '2666466670000') batchErrors++;
            batches++;
            break;
          }
          if (['failed', 'cancelled'].includes(b.state)) {
            batchErrors++;
            break;
          }
          await sleep(200);
        }
      }
    })();
    // Saturation: closed loop, 16 clients, 10 s, with the batch stream running.
    let done = 0;
    const satEnd = Date.now() + 10_000;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (Date.now() < satEnd) if (await infer(gw)) done++;
      }),
    );
    const saturation = done / 10;
    const rate = saturation * 0.7;
    say(`saturation ${saturation.toFixed(0)} req/s (batches running); soaking at ${rate.toFixed(0)} req/s for ${MINUTES} min`);

    for (const k of Object.keys(failures)) delete failures[k]; // the saturation phase overloads on purpose
    end = Date.now() + MINUTES * 60_000;
    // Open loop: requests start on a fixed schedule whatever the latency.
    const online = (async () => {
      const pending = new Set<Promise<void>>();
      const interval = 1000 / rate;
      let next = performance.now();
      while (Date.now() < end) {
        const p = infer(gw).then((good) => {
          if (good) ok++;
          else errors++;
        });
        pending.add(p);
        maxPending = Math.max(maxPending, pending.size);
        void p.finally(() => pending.delete(p));
        next += interval;
        const wait = next - performance.now();
        if (wait > 0) await sleep(wait);
      }
      await Promise.all(pending);
    })();
    const samples: { min: number; gateway: number; batch: number }[] = [];
    const t0 = Date.now();
    while (Date.now() < end) {
      await sleep(Math.min(SAMPLE_MS, Math.max(0, end - Date.now())));
      const [g, b] = await Promise.all([processMetrics(gw), processMetrics(api)]);
      const s = { min: (Date.now() - t0) / 60_000, gateway: rssMiB(gwProc.pid!), batch: rssMiB(batchProc.pid!) };
      samples.push(s);
      say(
        `t=${s.min.toFixed(1)} min  gateway RSS ${s.gateway.toFixed(0)} MiB (${fmtProcess(g)})  batch RSS ${s.batch.toFixed(0)} MiB (${fmtProcess(b)})  ` +
          `online ok ${ok} errors ${errors}${errors ? ` ${JSON.stringify(failures)}` : ''} max in flight ${maxPending}  batches ${batches}`,
      );
      maxPending = 0;
    }
    await Promise.all([online, batch]);
    // A leak keeps growing; an allocator fills its arenas to a high-water mark over the first
    // minutes under load (measured: the gateway peaked at 6.5 of 10 min, then fell) and a
    // single sample swings ±10 %. So the test compares means: the last quarter of the run
    // against its second quarter (after warm-up).
    const mean = (xs: typeof samples, k: 'gateway' | 'batch'): number => xs.reduce((a, x) => a + x[k], 0) / Math.max(1, xs.length);
    const q = Math.max(1, Math.floor(samples.length / 4));
    const mid = samples.slice(q, 2 * q);
    const tail = samples.slice(-q);
    const base = { gateway: mean(mid, 'gateway'), batch: mean(mid, 'batch') };
    const last = { gateway: mean(tail, 'gateway'), batch: mean(tail, 'batch') };
    const growth = { gateway: (last.gateway - base.gateway) / base.gateway, batch: (last.batch - base.batch) / base.batch };
    const first = samples[0]!;
    const peak = { gateway: Math.max(...samples.map((x) => x.gateway)), batch: Math.max(...samples.map((x) => x.batch)) };
    const result = {
      bench: 'soak',
      minutes: MINUTES,
      saturation_req_s: Math.round(saturation),
      rate_req_s: Math.round(rate),
      online_ok: ok,
      online_errors: errors,
      online_failures: failures,
      batches,
      batch_errors: batchErrors,
      malloc: allocator.description,
      rss_mib: {
        gateway_ready: Math.round(atReady.gateway),
        batch_ready: Math.round(atReady.batch),
        gateway_first: Math.round(first.gateway),
        gateway_q2_mean: Math.round(base.gateway),
        gateway_q4_mean: Math.round(last.gateway),
        gateway_peak: Math.round(peak.gateway),
        batch_first: Math.round(first.batch),
        batch_q2_mean: Math.round(base.batch),
        batch_q4_mean: Math.round(last.batch),
        batch_peak: Math.round(peak.batch),
      },
      rss_growth_pct: { gateway: Number((growth.gateway * 100).toFixed(1)), batch: Number((growth.batch * 100).toFixed(1)) },
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return errors === 0 && batchErrors === 0 && growth.gateway < 0.1 && growth.batch < 0.1 ? 0 : 1;
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    await sleep(2_000);
    await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`soak: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
