import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { Client } from 'pg';
import { grpcClosedLoop } from './online-grpc-autoscale.bench-part';
import { benchDatabase, closedLoop, clsBinaryTarget } from './support/http-load';
import { Probe, quantile as q } from './support/hybrid-probes';
import { cpuRate, cpuSample, processGroups, startStack, stealMs, type Stack } from './support/hybrid-stack';
import { SchedTrace } from './support/sched-trace';
import { LoadChild, type RemoteLoad } from './support/load-child';

/**
 * `npm run bench:hybrid`: does a running batch hurt online latency, as shipped? Both apps with
 * the shipped defaults (authentication on, bundled models, default partition and claim policy),
 * online `ppocr_cls` REST binary at 40 % of its measured saturation in open loop from a child
 * process (latency from each request's scheduled send time), an `infer` batch over the same
 * model uploaded as NDJSON by another child. Each round: online with no batch (the baseline),
 * then the batch alone, then online with the batch running (p99 over the first 2 s and after),
 * then online idle again (batch rate), then the batch is cancelled. Even rounds start with a
 * saturating REST + gRPC burst. A last online run after every batch checks for lasting damage.
 * Env: BENCH_ROUNDS (3), BENCH_HYBRID_ITEMS (32000: at ~1,150 items/s, 16,000 ran out before the last phase), BENCH_STEP_SECONDS (8), BENCH_ONLINE_SECONDS
 * (10), BENCH_BURST_SECONDS (24), BENCH_ENV (JSON of env overrides: a tuned variant, labelled),
 * BENCH_CONTROL=1 (the same phases and timing without any batch: what online does by itself),
 * BENCH_STEAL_LIMIT_MS (50: host steal above which a round is marked disturbed and another is run).
 */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ITEMS = Number(process.env.BENCH_HYBRID_ITEMS ?? 32_000);
const STEP = Number(process.env.BENCH_STEP_SECONDS ?? 8);
const ONLINE = Number(process.env.BENCH_ONLINE_SECONDS ?? 10);
const BURST = Number(process.env.BENCH_BURST_SECONDS ?? 24);
const CONTROL = process.env.BENCH_CONTROL === '1';
// This VM's host takes 5–570 ms/s of CPU (steal) in bursts, and online p99 follows it. A round
// whose phases saw more than this is printed and kept, marked disturbed, and one more round is
// run (at most ROUNDS extra); the headline is over undisturbed rounds, every round is reported.
const STEAL_LIMIT = Number(process.env.BENCH_STEAL_LIMIT_MS ?? 50);
const OVERRIDES = JSON.parse(process.env.BENCH_ENV ?? '{}') as Record<string, string>;
// BENCH_TRACE=1: each online phase's first 2 s as a timeline (50 ms buckets: requests sent, worst
// latency) with the apps' claim, revocation and replica events placed on it, and each process
// group's CPU time and run-queue wait over the first second (SchedTrace).
const TRACE = process.env.BENCH_TRACE === '1';
const DB = 'tandem_bench_hybrid';
const NODE = 'bench-hybrid';
const say = (s: string): void => void process.stdout.write(`${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const f = (v: number, d = 1): string => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');

async function dropDatabase(name: string): Promise<void> {
  const c = new Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).finally(() => c.end());
}

/** When an app logged a line (pino's epoch ms; else when this process read it). */
const whenLogged = (l: Record<string, unknown>): number => Number(typeof l.time === 'number' ? l.time : l._at);

/** BENCH_TRACE: the first 2 s of an online phase that started at `t0` (epoch ms). */
function timeline(name: string, t0: number, samples: [number, number][], s: Stack, sched?: SchedTrace): void {
  const cells: string[] = [];
  for (let b = 0; b < 40; b++) {
    const inB = samples.filter(([at]) => at - t0 >= b * 50 && at - t0 < (b + 1) * 50).map(([, ms]) => ms);
    if (inB.length > 0) cells.push(`${b * 50}:${inB.length}/${Math.max(...inB).toFixed(0)}`);
  }
  const events = [...s.gateway.logs.map((l) => ['gw', l] as const), ...s.batch.logs.map((l) => ['batch', l] as const)]
    .filter(([, l]) => whenLogged(l) >= t0 - 200 && whenLogged(l) < t0 + 2_000)
    .sort(([, a], [, b]) => whenLogged(a) - whenLogged(b))
    .map(([who, l]) => {
      const { _at, msg, level: _l, time: _t, pid: _p, hostname: _h, context: _c, component: _co, stoppedAt, ...rest } = l;
      const stopped = typeof stoppedAt === 'number' ? ` (process stopped at +${(stoppedAt - t0).toFixed(0)} ms)` : '';
      return `+${(whenLogged(l) - t0).toFixed(0)} ms ${who}: ${String(msg)}${stopped} ${JSON.stringify(rest)}`;
    });
  say(`  trace ${name} (ms from start: sent/worst ms per 50 ms): ${cells.join(' ')}`);
  for (const e of events) say(`    ${e}`);
  if (sched) say(`    CPU ms on a core / waiting for one, per 100 ms:\n      ${sched.render(t0)}`);
}

async function submit(s: Stack): Promise<string> {
  const url = `http://127.0.0.1:${s.batchPort}/v1/batches?task=infer&model=ppocr_cls&reducer=count&chunkSize=128`; // progress is counted per committed chunk
  const child = spawn(process.execPath, [resolve(__dirname, 'support/ndjson-upload.js'), url, String(ITEMS), 'u8'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, BENCH_KEY: s.key },
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  if (code !== 0) throw new Error(`batch upload failed (exit ${code})`);
  return (JSON.parse(out) as { id: string }).id;
}

interface Round {
  round: number;
  burst: boolean;
  base_p99_ms: number;
  first2s_p99_ms: number;
  after_p99_ms: number;
  ratio_first2s: number;
  ratio_after: number;
  /** The no-batch phase's own first 2 s: traffic after the same idle pause, without a batch. */
  base_first2s_p99_ms: number;
  /** Like for like: the first 2 s with the batch against the first 2 s without one. */
  ratio_first2s_same_window: number;
  errors: number;
  batch_alone_items_s: number;
  batch_idle_items_s: number;
  /** Host steal time during the no-batch and the with-batch phase (ms/s). */
  steal_base_ms_s: number;
  steal_mixed_ms_s: number;
  /** Either phase ran with more host steal than BENCH_STEAL_LIMIT_MS: the host, not us, moved the p99. */
  disturbed: boolean;
}

async function main(): Promise<void> {
  const label =
    (Object.keys(OVERRIDES).length ? `TUNED VARIANT ${JSON.stringify(OVERRIDES)}` : 'shipped defaults') +
    (CONTROL ? ', CONTROL RUN (no batch is ever submitted)' : '');
  say(`bench:hybrid — ${label}; ${ROUNDS} rounds, ${ITEMS}-item infer batches, online ${ONLINE} s per phase, bursts of ${BURST} s on even rounds`);
  if (!process.env.DATABASE_URL) await dropDatabase(DB); // the last run's batch input
  const databaseUrl = await benchDatabase(DB, process.env.DATABASE_URL);
  const stack = await startStack(databaseUrl, NODE, OVERRIDES);
  const probe = await Probe.open(databaseUrl);
  const load = LoadChild.start();
  // Interrupted: take the apps and the load child down too (they would keep running otherwise).
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      load.stop();
      void stack.stop().then(() => process.exit(130));
    });
  }
  const api = (path: string, method = 'GET'): Promise<Response> =>
    fetch(`http://127.0.0.1:${stack.batchPort}${path}`, { method, headers: { authorization: `Bearer ${stack.key}` } });
  const shares = (): ReturnType<Probe['shares']> => probe.shares(NODE);
  let lastSteal = 0;
  /** Items/s over `secs`; `lastSteal` keeps the host's steal time meanwhile (ms/s). */
  const progress = async (id: string, secs: number): Promise<number> => {
    const a = await probe.progress(id);
    const t0 = performance.now();
    const s0 = stealMs();
    await sleep(secs * 1000);
    lastSteal = (stealMs() - s0) / secs;
    return ((await probe.progress(id)).done - a.done) / ((performance.now() - t0) / 1000);
  };
  let rate = 0;
  // Each online phase also reports the host's steal time (ms per s) and the client's own worst stall.
  const online = async (secs: number): Promise<RemoteLoad & { t0: number; steal: number; noise: string; sched?: SchedTrace }> => {
    const sched = TRACE ? new SchedTrace(processGroups(stack, load.pid, await probe.backends()), 1_000, ['batch']) : undefined;
    // The monotonic clock V8's CPU profiles use (µs): places a BENCH_BATCH_NODE_ARGS=--cpu-prof profile on the timeline.
    if (TRACE) say(`  online phase starts at monotonic ${process.hrtime.bigint() / 1000n} µs, epoch ${Date.now()} ms`);
    const t0 = Date.now();
    const s0 = stealMs();
    const r = await load.openLoop(stack.gwPort, rate, secs, stack.key);
    const steal = (stealMs() - s0) / secs;
    return { ...r, t0, steal, sched, noise: `host steal ${steal.toFixed(0)} ms/s, client stall max ${r.clientLagMaxMs.toFixed(1)} ms` };
  };
  const rounds: Round[] = [];
  try {
    const cls = clsBinaryTarget(stack.gwPort, stack.key);
    await closedLoop(cls, 8, 2);
    const sat = await closedLoop(cls, 8, STEP);
    rate = 0.4 * sat.rps;
    say(`online saturation ${f(sat.rps, 0)} req/s (${sat.errors} errors); open loop at 40 %: ${f(rate, 0)} req/s`);
    // The load child's own first seconds (JIT, its first connections) are not the gateway's: a
    // discarded warm-up, so the reference is not inflated by the client (it was: stall 29 ms).
    await load.openLoop(stack.gwPort, rate, 3, stack.key);
    const base0 = await online(ONLINE);
    say(`online before any batch: p50 ${f(base0.p50, 2)} p99 ${f(base0.p99, 2)} ms, ${base0.errors} errors (${base0.noise})`);
    let batchAlone = NaN;
    for (let r = 1; rounds.filter((x) => !x.disturbed).length < ROUNDS && r <= 2 * ROUNDS; r++) {
      const burst = r % 2 === 0;
      let base = base0;
      if (burst) {
        const [rest, grpc] = await Promise.all([
          closedLoop(cls, 32, BURST),
          grpcClosedLoop(`127.0.0.1:${stack.grpcPort}`, resolve('dist/apps/gateway/src/grpc/proto'), 16, BURST, 1, stack.key),
        ]);
        say(
          `round ${r}: saturating burst ${BURST} s: REST ${f(rest.rps, 0)} req/s (${rest.errors} errors), gRPC ${f(grpc.itemsS, 0)} req/s (${grpc.errors} errors)`,
        );
      }
      if (r > 1) {
        base = await online(ONLINE);
        say(`round ${r}: online, no batch running: p99 ${f(base.p99, 2)} ms (${base.errors} errors; ${base.noise})`);
      }
      for (let i = 0; i < 100 && (await shares()).online > 0; i++) await sleep(100); // claim released after its hold-down
      const t0 = performance.now();
      // BENCH_CONTROL=1: the same sequence and timing with no batch at all (what the gateway does by itself).
      const id = CONTROL ? 'none (control run)' : await submit(stack);
      if (CONTROL) await sleep(20_000);
      for (let i = 0, s = await shares(); !CONTROL && i < 300 && s.owned + s.borrowed < s.cores; i++, s = await shares()) await sleep(100);
      await sleep(1_500);
      say(`round ${r}: batch ${id} submitted in ${f((performance.now() - t0) / 1000)} s and holding ${JSON.stringify(await shares())}`);
      const cpu0 = cpuSample(stack);
      const alone = CONTROL ? (await sleep(STEP * 1000), NaN) : await progress(id, STEP);
      const aloneSteal = lastSteal;
      const cpu1 = cpuSample(stack);
      if (r === 1) batchAlone = alone;
      const mixed = await online(ONLINE);
      const cpu2 = cpuSample(stack);
      if (TRACE) {
        timeline(`round ${r} no batch`, base.t0, base.samples, stack, base.sched);
        timeline(`round ${r} with batch`, mixed.t0, mixed.samples, stack, mixed.sched);
      }
      const first = mixed.samples.filter(([at]) => at - mixed.t0 < 2_000).map(([, ms]) => ms);
      const baseFirst = base.samples.filter(([at]) => at - base.t0 < 2_000).map(([, ms]) => ms);
      const after = mixed.samples.filter(([at]) => at - mixed.t0 >= 2_000).map(([, ms]) => ms);
      for (let i = 0, s = await shares(); !CONTROL && i < 150 && s.owned + s.borrowed < s.cores; i++, s = await shares()) await sleep(100); // online claim released, batch borrows every core again
      await sleep(1_000);
      const idle = CONTROL ? NaN : await progress(id, STEP);
      const idleSteal = lastSteal;
      const state = CONTROL ? 'running' : (await probe.progress(id)).state;
      if (!CONTROL) await api(`/v1/batches/${id}/cancel`, 'POST');
      for (let i = 0; i < 100 && (await shares()).borrowed + (await shares()).owned > 0; i++) await sleep(100);
      const row: Round = {
        round: r,
        burst,
        base_p99_ms: base.p99,
        first2s_p99_ms: q(first, 0.99),
        after_p99_ms: q(after, 0.99),
        ratio_first2s: q(first, 0.99) / base.p99,
        ratio_after: q(after, 0.99) / base.p99,
        base_first2s_p99_ms: q(baseFirst, 0.99),
        ratio_first2s_same_window: q(first, 0.99) / q(baseFirst, 0.99),
        errors: base.errors + mixed.errors,
        batch_alone_items_s: alone,
        batch_idle_items_s: idle,
        steal_base_ms_s: base.steal,
        steal_mixed_ms_s: mixed.steal,
        disturbed: base.steal > STEAL_LIMIT || mixed.steal > STEAL_LIMIT,
      };
      rounds.push(row);
      say(
        `round ${r}${burst ? ' (after a burst)' : ''}${row.disturbed ? ` [DISTURBED: host steal ${f(base.steal, 0)} / ${f(mixed.steal, 0)} ms/s > ${STEAL_LIMIT}]` : ''}: online p99 no batch ${f(base.p99, 2)} ms → with batch first 2 s ${f(row.first2s_p99_ms, 2)} ms (${f(row.ratio_first2s, 2)}×), after ${f(row.after_p99_ms, 2)} ms (${f(row.ratio_after, 2)}×); ` +
          `vs before any batch ${f(row.first2s_p99_ms / base0.p99, 2)}× / ${f(row.after_p99_ms / base0.p99, 2)}×; no batch, its own first 2 s ${f(row.base_first2s_p99_ms, 2)} ms (first 2 s like for like ${f(row.ratio_first2s_same_window, 2)}×); errors ${row.errors}; ` +
          `batch alone ${f(alone, 0)} items/s (steal ${f(aloneSteal, 0)} ms/s), online idle again ${f(idle, 0)} items/s (steal ${f(idleSteal, 0)} ms/s; ${f(idle / batchAlone, 3)} of round 1 alone, ${f(idle / alone, 3)} of this round's)${state === 'running' ? '' : `; WARNING: batch ${state} before the round ended, raise BENCH_HYBRID_ITEMS`}`,
      );
      say(`round ${r}: CPU cores used, batch alone: ${cpuRate(cpu0, cpu1, STEP)}; online with batch: ${cpuRate(cpu1, cpu2, ONLINE)}; during it ${mixed.noise}`);
    }
    const end = await online(ONLINE);
    say(`online after every batch ended: p99 ${f(end.p99, 2)} ms (${f(end.p99 / base0.p99, 2)}× before any batch), ${end.errors} errors (${end.noise})`);
    // From the claim transaction's revocation (the database's clock, same host) to the unit's
    // process stopped; and the worker's own part, from the notice reaching it.
    const revoke = stack.batch.logs.map((l) => Number(l.ledgerRevokeToFreeMs)).filter(Number.isFinite);
    const local = stack.batch.logs.map((l) => Number(l.revokeToFreeMs)).filter(Number.isFinite);
    const waited = stack.gateway.logs.map((l) => Number(l.waitedMs)).filter(Number.isFinite);
    say(
      `revocation → unit's cores free (ledger revoke to process stopped, NOTIFY included; n=${revoke.length}): p50 ${f(q(revoke, 0.5), 2)} p99 ${f(q(revoke, 0.99), 2)} max ${f(Math.max(...revoke), 2)} ms ` +
        `[${revoke.map((x) => f(x, 1)).join(', ')}]; of which in the worker (notice → stopped, n=${local.length}): p99 ${f(q(local, 0.99), 2)} ms; ` +
        `online claim activated after (ledger handshake, gateway, n=${waited.length}): p50 ${f(q(waited, 0.5))} p99 ${f(q(waited, 0.99))} ms`,
    );
    const worstOf = (rs: Round[]): number => Math.max(...rs.flatMap((x) => [x.ratio_first2s, x.ratio_after]));
    const clean = rounds.filter((x) => !x.disturbed);
    const worst = worstOf(clean);
    const out = {
      bench: 'hybrid',
      variant: label,
      online_p99_before_any_batch_ms: Number(f(base0.p99, 2)),
      worst_round_p99_ratio: Number(f(worst, 3)),
      worst_round_p99_ratio_all_rounds: Number(f(worstOf(rounds), 3)),
      // The first 2 s against the no-batch phase's own first 2 s (both start after the same pause), and after 2 s as above.
      worst_round_p99_ratio_same_window: Number(f(Math.max(...clean.flatMap((x) => [x.ratio_first2s_same_window, x.ratio_after])), 3)),
      rounds_disturbed_by_host: rounds.length - clean.length,
      rounds: rounds.map((x) => ({
        ...x,
        base_p99_ms: Number(f(x.base_p99_ms, 2)),
        first2s_p99_ms: Number(f(x.first2s_p99_ms, 2)),
        after_p99_ms: Number(f(x.after_p99_ms, 2)),
        ratio_first2s: Number(f(x.ratio_first2s, 3)),
        ratio_after: Number(f(x.ratio_after, 3)),
        base_first2s_p99_ms: Number(f(x.base_first2s_p99_ms, 2)),
        ratio_first2s_same_window: Number(f(x.ratio_first2s_same_window, 3)),
        steal_base_ms_s: Number(f(x.steal_base_ms_s, 0)),
        steal_mixed_ms_s: Number(f(x.steal_mixed_ms_s, 0)),
        batch_alone_items_s: Number(f(x.batch_alone_items_s, 0)),
        batch_idle_items_s: Number(f(x.batch_idle_items_s, 0)),
      })),
      online_p99_after_all_batches_ms: Number(f(end.p99, 2)),
      // Like for like: each round's rate with online idle again against the same round's batch alone.
      batch_idle_ratio_min: Number(f(Math.min(...rounds.map((x) => x.batch_idle_items_s / x.batch_alone_items_s)), 3)),
      revoke_p99_ms: Number(f(q(revoke, 0.99), 2)),
      errors: base0.errors + end.errors + rounds.reduce((a, x) => a + x.errors, 0),
    };
    say(
      `targets: every round's p99 with batch ≤ 1.5× its no-batch p99 (worst ${out.worst_round_p99_ratio} over ${clean.length} rounds the host left alone; ${out.worst_round_p99_ratio_all_rounds} over all ${rounds.length}; with each phase's first 2 s compared to the other's ${out.worst_round_p99_ratio_same_window}); batch idle ≥ 0.85× alone (worst ${out.batch_idle_ratio_min}); revocation → free p99 ≤ 10 ms (${out.revoke_p99_ms})`,
    );
    say(JSON.stringify(out));
  } finally {
    await stack.stop();
    await probe.close();
    load.stop();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:hybrid failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
