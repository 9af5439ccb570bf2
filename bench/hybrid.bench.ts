import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { Client } from 'pg';
import { buildBurnModel } from '../scripts/generate-models';
import { Probe, quantile, traceCpu, writePlot, type Shares } from './support/hybrid-probes';
import { benchDatabase, closedLoop, clsBinaryTarget, freePort, type Target } from './support/http-load';
import { LoadChild } from './support/load-child';

/**
 * `npm run bench:hybrid`: online ppocr_cls on the gateway and an `infer` batch over the same
 * model on a batch worker, one machine, one device ledger (this node's CPU; the partition and the
 * online SLO are the policy under test). Both apps are compiled children, the open-loop load
 * comes from a child of its own, the bench reads the ledger from Postgres.
 * Environment: DATABASE_URL, REDIS_URL, BENCH_STEP_SECONDS (5), BENCH_HYBRID_ITEMS (90000),
 * BENCH_REVOKE_CYCLES (4), BENCH_P99_ROUNDS (3), BENCH_ONLINE_SHARE (1), BENCH_P99_TARGET_MS (10),
 * BENCH_PLOT (docs/img/hybrid-trace.png), BENCH_DEBUG, BENCH_BATCH_MODEL=burn, BENCH_GW_PROF=<dir>.
 */
const STEP = Number(process.env.BENCH_STEP_SECONDS ?? 5);
const ITEMS = Number(process.env.BENCH_HYBRID_ITEMS ?? 90_000);
const CYCLES = Number(process.env.BENCH_REVOKE_CYCLES ?? 4);
const ROUNDS = Number(process.env.BENCH_P99_ROUNDS ?? 3);
const PLOT = resolve(process.env.BENCH_PLOT ?? 'docs/img/hybrid-trace.png');
const HOLD_DOWN_MS = 1_000;
// The deployment policy under test: the device partition and the online SLO.
const ONLINE_SHARE = Number(process.env.BENCH_ONLINE_SHARE ?? 1);
const P99_TARGET_MS = Number(process.env.BENCH_P99_TARGET_MS ?? 10);
const DB = 'tandem_bench_hybrid';
const NODE = 'bench-hybrid';
const say = (s: string): void => void process.stdout.write(`${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const q = quantile;
const r = (v: number, d = 1): number => Number(v.toFixed(d));

interface Child {
  proc: ChildProcess;
  logs: Record<string, unknown>[];
}

/** A compiled app as a child; its JSON log lines are kept for the figures they carry. */
async function app(script: string, env: NodeJS.ProcessEnv, readyUrl: string): Promise<Child> {
  // BENCH_GW_PROF=<dir>: a V8 CPU profile of the gateway (written when it exits).
  const prof = process.env.BENCH_GW_PROF && script.includes('gateway') ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_GW_PROF}`] : [];
  const proc = spawn(process.execPath, [...prof, script], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const logs: Record<string, unknown>[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    if (!l.includes('revokeToReleaseMs') && !l.includes('preemption completed')) return;
    try {
      logs.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      // not a log line
    }
  });
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) throw new Error(`${script} exited with ${proc.exitCode}`);
    if ((await fetch(readyUrl).then((x) => x.status, () => 0)) === 200) return { proc, logs };
    if (i > 600) throw new Error(`${script} not ready`);
    await sleep(100);
  }
}

const loopDelay = monitorEventLoopDelay({ resolution: 2 });

/** Streams the batch's NDJSON from a child process (see bench/support/ndjson-upload.ts); returns the batch id. */
async function submitInChild(url: string, kind: 'u8' | 'burn'): Promise<string> {
  const child = spawn(process.execPath, [resolve(__dirname, 'support/ndjson-upload.js'), url, String(ITEMS), kind], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  if (code !== 0) throw new Error(`batch upload failed (exit ${code})`);
  return (JSON.parse(out) as { id: string }).id;
}

async function dropDatabase(name: string): Promise<void> {
  const c = new Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).finally(() => c.end());
}

async function main(): Promise<void> {
  say(`bench:hybrid — ${STEP}s steps, ${ITEMS} batch items, ${CYCLES} revocation cycles; partition online ${ONLINE_SHARE} / batch ${1 - ONLINE_SHARE} (borrowing on), online p99 SLO ${P99_TARGET_MS || 'off'} ms`);
  if (!process.env.DATABASE_URL) await dropDatabase(DB); // the last run's 1 GB of batch input
  const databaseUrl = await benchDatabase(DB, process.env.DATABASE_URL);
  const repo = mkdtempSync(join(tmpdir(), 'tandem-hybrid-'));
  mkdirSync(join(repo, 'ppocr_cls', '1'), { recursive: true });
  copyFileSync(realpathSync('models/ppocr_cls/1/model.onnx'), join(repo, 'ppocr_cls', '1', 'model.onnx'));
  // Online: one replica on one core (the online partition of a 2-core node).
  writeFileSync(
    join(repo, 'ppocr_cls', 'config.json'),
    JSON.stringify({ max_batch_size: 8, dynamic_batching: { max_queue_delay_us: 0, max_queue_size: 256 }, replicas: 1, device: { threads_per_replica: 1 }, inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, 48, 192] }] }),
  );
  if (process.env.BENCH_BATCH_MODEL === 'burn') {
    mkdirSync(join(repo, 'burn', '1'), { recursive: true });
    writeFileSync(join(repo, 'burn', '1', 'model.onnx'), buildBurnModel(64, 1024));
    writeFileSync(join(repo, 'burn', 'config.json'), JSON.stringify({ max_batch_size: 16, replicas: 1, device: { threads_per_replica: 1 } }));
  }
  const [gwPort, bPort] = [await freePort(), await freePort()];
  const common = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    QUEUE_PREFIX: `benchhybrid${randomBytes(3).toString('hex')}`,
    TANDEM_AUTH: 'off',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    MODEL_REPOSITORY: repo,
    SCHEDULER_NODE_NAME: NODE,
    SCHEDULER_DISCOVER_GPUS: 'false',
    SCHEDULER_DEFAULT_ONLINE_SHARE: String(ONLINE_SHARE),
    SCHEDULER_DEFAULT_BATCH_SHARE: String(1 - ONLINE_SHARE),
    SCHEDULER_DEFAULT_BATCH_MAY_BORROW: 'true',
  };
  const gw = `http://127.0.0.1:${gwPort}`;
  const bu = `http://127.0.0.1:${bPort}`;
  const gateway = await app('dist/apps/gateway/src/main.js', { ...common, GATEWAY_PORT: String(gwPort), GATEWAY_GRPC_PORT: String(await freePort()), HYBRID_HOLD_DOWN_MS: String(HOLD_DOWN_MS), HYBRID_ONLINE_P99_TARGET_MS: String(P99_TARGET_MS) }, `${gw}/v2/health/ready`);
  const batch = await app('dist/apps/batch/src/main.js', { ...common, BATCH_PORT: String(bPort), BATCH_BORROW_HOLD_DOWN_MS: String(HOLD_DOWN_MS), BATCH_CONCURRENCY: '2', BATCH_UPLOAD_LIMIT_MB: '16384' }, `${bu}/v2/health/ready`);
  const cls: Target = clsBinaryTarget(gwPort);
  const probe = await Probe.open(databaseUrl);
  const load = LoadChild.start();
  const shares = (): Promise<Shares> => probe.shares(NODE);
  try {
    // 1. Online alone: saturation, then 40 % of it in open loop.
    await closedLoop(cls, 8, 2);
    const sat = (await closedLoop(cls, 8, STEP)).rps;
    const rate = 0.4 * sat;
    const soloLats: { t: number; ms: number }[] = [];
    const soloStart = performance.now();
    loopDelay.enable();
    loopDelay.reset();
    const solo = await load.openLoop(gwPort, rate, STEP);
    for (const [at, ms] of solo.samples) soloLats.push({ t: (at - performance.timeOrigin - soloStart) / 1000, ms });
    if (process.env.BENCH_DEBUG) {
      for (let t = 0; t < 2; t += 0.25) {
        const w = soloLats.filter((l) => l.t >= t && l.t < t + 0.25).map((l) => l.ms);
        say(`  solo t=${t.toFixed(2)} n=${w.length} p50=${q(w, 0.5).toFixed(1)} p99=${q(w, 0.99).toFixed(1)}`);
      }
    }
    const soloLoopP99 = loopDelay.percentile(99) / 1e6;
    say(`online solo: saturation ${sat.toFixed(0)} req/s; open loop at 40% (${rate.toFixed(0)} req/s): p50 ${solo.p50.toFixed(2)} ms p99 ${solo.p99.toFixed(2)} ms (${solo.errors} errors)`);
    await sleep(HOLD_DOWN_MS * 2); // online share released before the batch starts

    // 2. The batch: generated 8-bit images streamed as NDJSON.
    // BENCH_BATCH_MODEL=burn: a generated compute-only model with 16-float items (no image I/O), to separate device sharing from batch I/O.
    const burn = process.env.BENCH_BATCH_MODEL === 'burn';
    const t0 = performance.now();
    // Uploaded by a child process: streaming a gigabyte through this process would leave the
    // load generator with a heap whose GC pauses show up as online latency.
    const id = await submitInChild(`${bu}/v1/batches?task=infer&model=${burn ? 'burn' : 'ppocr_cls'}&reducer=count&chunkSize=${process.env.BENCH_CHUNK ?? 256}`, burn ? 'burn' : 'u8');
    say(`batch submitted: ${ITEMS} items in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    // Trace sampler: batch progress and ledger shares every 250 ms, online latencies as they come.
    const start = performance.now();
    const samples: { t: number; done: number; offered: number; s: Shares }[] = [];
    const lats: { t: number; ms: number }[] = [];
    let offered = 0;
    let sampling = true;
    let finishedEarly = false;
    const sampler = (async () => {
      while (sampling) {
        const b = await probe.progress(id);
        const s = await shares(); // one connection: queries one after the other
        if (b.state !== 'running' && b.state !== 'queued' && b.state !== 'paused') finishedEarly = true;
        samples.push({ t: (performance.now() - start) / 1000, done: b.done, offered, s });
        await sleep(250);
      }
    })();
    const rateBetween = (a: number, b: number): number => {
      const w = samples.filter((x) => x.t >= a && x.t <= b);
      return w.length < 2 ? NaN : (w.at(-1)!.done - w[0]!.done) / (w.at(-1)!.t - w[0]!.t);
    };
    const now = (): number => (performance.now() - start) / 1000;
    const online = async (secs: number): Promise<void> => {
      loopDelay.reset();
      offered = rate;
      const res = await load.openLoop(gwPort, rate, secs);
      for (const [at, ms] of res.samples) lats.push({ t: (at - performance.timeOrigin - start) / 1000, ms });
      offered = 0;
    };

    // 3. Batch solo (online idle since before it started), after it reached full speed.
    for (let s = await shares(); s.owned + s.borrowed < s.cores; s = await shares()) await sleep(100);
    await sleep(1_500);
    const soloFrom = now();
    await sleep(STEP * 1000);
    const batchSolo = rateBetween(soloFrom, now());
    // 4. Trace: online 0 → 40 % → 0.
    const aFrom = now();
    await sleep(STEP * 1000);
    const bFrom = now();
    if (process.env.BENCH_DEBUG) say(`  step B starts at monotonic ${process.hrtime.bigint() / 1000n} us`);
    const cpuTrace = process.env.BENCH_DEBUG ? traceCpu([gateway.proc.pid!, batch.proc.pid!], 1_500) : Promise.resolve([]);
    await online(STEP);
    for (const line of await cpuTrace) say(line);
    const cFrom = now();
    const mixedLoopP99 = loopDelay.percentile(99) / 1e6;
    await sleep(STEP * 1000 + 2 * HOLD_DOWN_MS);
    const cTo = now();
    const back = samples.find((x) => x.t >= cFrom && x.s.borrowed > 0)?.t ?? NaN;
    const idleRate = rateBetween(Number.isNaN(back) ? cFrom : back + 1, cTo);
    const mixed = lats.filter((l) => l.t >= bFrom && l.t < cFrom).map((l) => l.ms);
    // 5. Revocation cycles: short online bursts, each revoking the borrowed unit.
    for (let i = 0; i < CYCLES && !finishedEarly; i++) {
      await online(1);
      for (let w = 0; w < 60 && (await shares()).borrowed === 0; w++) await sleep(100);
    }
    // 6. p99 rounds: this VM's latency drifts within seconds even with nothing co-located, so the
    // p99 ratio is also taken as the median over interleaved pairs: batch paused (online solo),
    // then batch resumed and borrowing again (online with batch), back to back.
    const rounds: { solo: number; mixed: number }[] = [];
    const roundsFrom = now();
    for (let i = 0; i < ROUNDS && !finishedEarly; i++) {
      await fetch(`${bu}/v1/batches/${id}/pause`, { method: 'POST' });
      for (let last = -1, cur = (await probe.progress(id)).done; cur !== last; await sleep(600), last = cur, cur = (await probe.progress(id)).done);
      offered = rate;
      const so = await load.openLoop(gwPort, rate, STEP);
      offered = 0;
      for (const [at, ms] of so.samples) lats.push({ t: (at - performance.timeOrigin - start) / 1000, ms });
      await fetch(`${bu}/v1/batches/${id}/resume`, { method: 'POST' });
      await sleep(HOLD_DOWN_MS + 200); // online share released after the solo phase
      for (let w = 0, sh = await shares(); w < 100 && sh.owned + sh.borrowed < sh.cores; w++, sh = await shares()) await sleep(100);
      await sleep(1_000);
      offered = rate;
      const mx = await load.openLoop(gwPort, rate, STEP);
      offered = 0;
      for (const [at, ms] of mx.samples) lats.push({ t: (at - performance.timeOrigin - start) / 1000, ms });
      rounds.push({ solo: so.p99, mixed: mx.p99 });
      say(`p99 round ${i + 1}: solo ${so.p99.toFixed(2)} ms, with batch ${mx.p99.toFixed(2)} ms, ratio ${(mx.p99 / so.p99).toFixed(3)}`);
    }
    sampling = false;
    await sampler;
    if (finishedEarly) say(`WARNING: the batch finished before the run ended; raise BENCH_HYBRID_ITEMS`);
    await fetch(`${bu}/v1/batches/${id}/cancel`, { method: 'POST' });

    const revoke = batch.logs.map((l) => Number(l.revokeToReleaseMs)).filter((x) => Number.isFinite(x));
    const preemptWait = gateway.logs.map((l) => Number(l.waitedMs)).filter((x) => Number.isFinite(x));
    const p99Mixed = q(mixed, 0.99);
    const med = (xs: number[]): number => q(xs, 0.5);
    const out = {
      bench: 'hybrid',
      online_p99_solo_ms: r(rounds.length ? med(rounds.map((x) => x.solo)) : solo.p99, 2),
      online_p99_mixed_ms: r(rounds.length ? med(rounds.map((x) => x.mixed)) : p99Mixed, 2),
      p99_ratio: r(rounds.length ? med(rounds.map((x) => x.mixed / x.solo)) : p99Mixed / solo.p99, 3),
      trace_p99_solo_ms: r(solo.p99, 2),
      trace_p99_mixed_ms: r(p99Mixed, 2),
      batch_solo_items_s: r(batchSolo),
      batch_idle_items_s: r(idleRate),
      batch_idle_ratio: r(idleRate / batchSolo, 3),
      revoke_p99_ms: r(q(revoke, 0.99), 1),
    };
    say(`batch solo ${batchSolo.toFixed(0)} items/s; trace: online idle ${rateBetween(aFrom, bFrom).toFixed(0)}, online at 40% ${rateBetween(bFrom + 1, cFrom).toFixed(0)}, idle again (after ${(back - cFrom).toFixed(1)} s to re-borrow) ${idleRate.toFixed(0)} items/s`);
    const settled = lats.filter((l) => l.t >= bFrom + 1 && l.t < cFrom).map((l) => l.ms);
    say(`online at 40% with batch: p50 ${q(mixed, 0.5).toFixed(2)} ms p99 ${p99Mixed.toFixed(2)} ms (${mixed.length} answers) vs solo p99 ${solo.p99.toFixed(2)} ms; from 1 s after the step on: p99 ${q(settled, 0.99).toFixed(2)} ms`);
    say(`revocation → release (worker, n=${revoke.length}): p50 ${q(revoke, 0.5).toFixed(1)} p99 ${q(revoke, 0.99).toFixed(1)} max ${Math.max(...revoke).toFixed(1)} ms; online claim waited for it (gateway, n=${preemptWait.length}): p50 ${q(preemptWait, 0.5)} p99 ${q(preemptWait, 0.99)} ms`);
    say(`bench process event-loop delay p99 (the load generator runs in a child of its own): solo ${soloLoopP99.toFixed(1)} ms, with batch ${mixedLoopP99.toFixed(1)} ms`);
    say(`ratios: p99 with batch/solo ${out.p99_ratio} (median of ${rounds.length} interleaved rounds; single trace step ${(p99Mixed / solo.p99).toFixed(3)}) (target ≤ 1.3); batch idle/solo ${out.batch_idle_ratio} (target ≥ 0.85); revoke p99 ${out.revoke_p99_ms} ms (target ≤ 250)`);
    if (process.env.BENCH_DEBUG) {
      for (let t = bFrom; t < cFrom; t += 0.25) {
        const w = lats.filter((l) => l.t >= t && l.t < t + 0.25).map((l) => l.ms);
        const sm = samples.find((x) => x.t >= t);
        say(`  t=${(t - bFrom).toFixed(2)} n=${w.length} p50=${q(w, 0.5).toFixed(1)} p99=${q(w, 0.99).toFixed(1)} max=${Math.max(...w).toFixed(1)} shares=${JSON.stringify(sm?.s)}`);
      }
    }
    writePlot(PLOT, samples, lats, { aFrom, bFrom, cFrom, cTo, roundsFrom });
    say(`plot: ${PLOT}`);
    say(JSON.stringify(out));
  } finally {
    gateway.proc.kill('SIGTERM');
    batch.proc.kill('SIGTERM');
    rmSync(repo, { recursive: true, force: true });
    await probe.close();
    load.stop();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:hybrid failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
