/**
 * npm run bench:scheduler — the device ledger under contention.
 *  1. Baseline: one process allocating/releasing alone (uncontended latency).
 *  2. Race: 4 processes allocate/release share and memory (up to 32 GiB of 80) on one device set
 *     for 20 s, the invariant (no device over its share or its memory) checked from the ledger
 *     after every step; refusals are counted by cause (share full: 503, memory full: 409).
 *  3. Preemption: a batch worker process holds a borrowed share; the bench asks for online share,
 *     timing request → the holder's release (NOTIFY → yield → release) and request → grant.
 */
import 'reflect-metadata';
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { buildDataSourceOptions, runMigrations } from '@tandem/persistence';
import { defaultSchedulerOptions, Scheduler, StaticGpuProbe } from '@tandem/scheduler';
import type { RaceCommand, RaceResult } from './scheduler-race.worker';

const ADMIN_URL = process.env.BENCH_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const RACE_S = Number(process.env.BENCH_SCHED_RACE_S ?? 20);
const BASELINE_S = Number(process.env.BENCH_SCHED_BASELINE_S ?? 5);
const PREEMPT_ROUNDS = Number(process.env.BENCH_SCHED_PREEMPT_ROUNDS ?? 60);
const PROCS = 4;
const DEVICES = 4;

/** Epoch ms with sub-ms precision; the worker stamps its release the same way. */
const nowMs = (): number => performance.timeOrigin + performance.now();

type Cmd = RaceCommand extends infer C ? (C extends { id: number } ? Omit<C, 'id'> : never) : never;

class Child {
  private seq = 0;
  private readonly waiting = new Map<number, (m: { ok: boolean; value?: unknown; error?: string }) => void>();
  readonly events: ((m: Record<string, unknown>) => void)[] = [];
  private constructor(readonly proc: ChildProcess) {
    proc.on('message', (m: Record<string, unknown>) => {
      if (typeof m.id === 'number') {
        this.waiting.get(m.id)?.(m as { ok: boolean });
        this.waiting.delete(m.id);
      } else if (m.event) this.events.shift()?.(m);
    });
  }
  static async start(url: string, name: string): Promise<Child> {
    const proc = fork(join(__dirname, 'scheduler-race.worker.js'), [], { env: { ...process.env, SCHED_BENCH_WORKER: JSON.stringify({ url, name }) } });
    const c = new Child(proc);
    await new Promise<void>((res, rej) => {
      proc.once('message', () => res());
      proc.once('exit', (code) => rej(new Error(`worker exited ${code}`)));
    });
    return c;
  }
  call<T>(cmd: Cmd): Promise<T> {
    const id = ++this.seq;
    return new Promise<T>((res, rej) => {
      this.waiting.set(id, (m) => (m.ok ? res(m.value as T) : rej(new Error(m.error))));
      this.proc.send({ ...cmd, id });
    });
  }
  nextEvent(): Promise<Record<string, unknown>> {
    return new Promise((res) => this.events.push(res));
  }
}

const pct = (xs: number[], p: number): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const r2 = (x: number): number => Math.round(x * 100) / 100;

async function admin(sql: string): Promise<void> {
  const c = new Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

async function main(): Promise<void> {
  const dbName = `tandem_bench_sched_${randomBytes(4).toString('hex')}`;
  const u = new URL(ADMIN_URL);
  u.pathname = `/${dbName}`;
  const url = u.toString();
  await admin(`CREATE DATABASE "${dbName}"`);
  const children: Child[] = [];
  let ds: DataSource | null = null;
  let sched: Scheduler | null = null;
  try {
    await runMigrations(url);
    ds = await new DataSource(buildDataSourceOptions({ url, poolSize: 4, applicationName: 'sched-bench-main' })).initialize();
    const declared = Array.from({ length: DEVICES }, (_, i) => ({ kind: 'gpu' as const, index: i, name: 'Simulated H100', memoryMiB: 81_559 }));
    sched = await new Scheduler(
      ds,
      defaultSchedulerOptions({ nodeName: 'bench', discoverCpu: false, discoverGpus: false, declaredDevices: declared, preemptGraceMs: 2_000 }),
      {
        probe: new StaticGpuProbe(''),
        databaseUrl: url,
      },
    ).start();
    const set = Array.from({ length: DEVICES }, (_, i) => `bench/gpu${i}`);
    for (let i = 0; i < PROCS + 1; i++) children.push(await Child.start(url, `bench-worker-${i}`));

    // Shared 2-core machines: the load around the run explains most of the spread between runs.
    console.log(`load average at start (1/5/15 min): ${loadavg().map(r2).join(' / ')}`);
    // 1. Baseline: one process alone.
    const solo = await children[0]!.call<RaceResult>({ cmd: 'race', durationMs: BASELINE_S * 1000, devices: set, seed: 1, checkInvariant: true });
    const soloP50 = pct(solo.latenciesMs, 50);
    const soloP99 = pct(solo.latenciesMs, 99);
    console.log(`baseline (1 process, ${BASELINE_S}s): ${r2(solo.granted / BASELINE_S)} allocs/s, p50 ${r2(soloP50)} ms, p99 ${r2(soloP99)} ms`);

    // 2. Race: 4 processes on the same device set.
    const t0 = performance.now();
    const results = await Promise.all(
      children.slice(0, PROCS).map((c, i) => c.call<RaceResult>({ cmd: 'race', durationMs: RACE_S * 1000, devices: set, seed: 100 + i, checkInvariant: true })),
    );
    const elapsedS = (performance.now() - t0) / 1000;
    const lat = results.flatMap((r) => r.latenciesMs);
    const granted = results.reduce((s, r) => s + r.granted, 0);
    const refused = results.reduce((s, r) => s + r.refused, 0);
    const refusedMemory = results.reduce((s, r) => s + r.refusedMemory, 0);
    const checks = results.reduce((s, r) => s + r.checks, 0);
    const violations = results.reduce((s, r) => s + r.violations.length, 0) + (await sched.ledger.violations()).length;
    const allocsS = granted / elapsedS;
    const p50 = pct(lat, 50);
    const p99 = pct(lat, 99);
    console.log(
      `race (${PROCS} processes, ${RACE_S}s, ${DEVICES} devices): ${r2(allocsS)} allocs/s granted (${refused} refused: ${refused - refusedMemory} share full, ${refusedMemory} memory full), ` +
        `allocate p50 ${r2(p50)} ms, p99 ${r2(p99)} ms; ${checks} invariant checks, ${violations} violations`,
    );
    const preempting = results.flatMap((r) => r.preemptingMs);
    console.log(
      `  of which ${preempting.length} online grants revoked a borrowed share first (waiting for its holder): p50 ${r2(pct(preempting, 50))} ms, p99 ${r2(pct(preempting, 99))} ms`,
    );
    const plain = results.flatMap((r) => r.plainMs);
    console.log(`  allocations that preempted nothing: p50 ${r2(pct(plain, 50))} ms, p99 ${r2(pct(plain, 99))} ms`);
    console.log(`ratios vs baseline: p50 ×${r2(p50 / soloP50)}, p99 ×${r2(p99 / soloP99)}, throughput ×${r2(allocsS / (solo.granted / BASELINE_S))}`);

    // 3. Preemption: request → holder's release, and request → grant.
    const holder = children[PROCS]!;
    const toRelease: number[] = [];
    const toGrant: number[] = [];
    const toHeard: number[] = [];
    for (let i = 0; i < PREEMPT_ROUNDS; i++) {
      const device = set[i % DEVICES]!;
      await holder.call({ cmd: 'borrow', device });
      const released = holder.nextEvent();
      const start = nowMs();
      const lease = await sched.allocations.allocate({ kind: 'online', share: 0.5, devices: [device] });
      toGrant.push(nowMs() - start);
      const ev = await released;
      toHeard.push(Number(ev.heardAt) - start);
      toRelease.push(Number(ev.releasedAt) - start);
      await lease.release();
    }
    const preemptP99 = pct(toRelease, 99);
    console.log(
      `preemption (${PREEMPT_ROUNDS} rounds): request→holder notified p50 ${r2(pct(toHeard, 50))} ms; ` +
        `request→holder released p50 ${r2(pct(toRelease, 50))} ms, p99 ${r2(preemptP99)} ms; request→online granted p50 ${r2(pct(toGrant, 50))} ms, p99 ${r2(pct(toGrant, 99))} ms`,
    );
    console.log(`load average at end (1/5/15 min): ${loadavg().map(r2).join(' / ')}`);
    console.log(`targets: p99 ≤ 10 ms → ${p99 <= 10 ? 'met' : 'MISSED'}; violations 0 → ${violations === 0 ? 'met' : 'MISSED'}`);
    console.log(
      JSON.stringify({
        bench: 'scheduler',
        allocs_s: r2(allocsS),
        p50_ms: r2(p50),
        p99_ms: r2(p99),
        refused,
        refused_memory: refusedMemory,
        violations,
        preempt_p99_ms: r2(preemptP99),
      }),
    );
  } finally {
    await Promise.all(children.map((c) => c.call({ cmd: 'stop' }).catch(() => undefined)));
    await sched?.stop();
    await ds?.destroy();
    await admin(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
