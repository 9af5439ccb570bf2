import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { chooseAllocator } from '../../scripts/launcher/allocator-env';
import { freePort } from './http-load';
import { cpuSeconds, procStat } from './proc-stat';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface App {
  proc: ChildProcess;
  /** JSON log lines that carry figures (revocation timings, preemptions). */
  logs: Record<string, unknown>[];
}

export interface Stack {
  gwPort: number;
  grpcPort: number;
  batchPort: number;
  key: string;
  gateway: App;
  batch: App;
  /** SIGTERM to both apps; resolves when they exited (SIGKILL after 15 s). */
  stop(): Promise<void>;
}

/** A compiled app as a child; its JSON log lines with figures are kept. */
async function app(script: string, env: NodeJS.ProcessEnv, readyUrl: string, nodeArgs: string[] = []): Promise<App> {
  // detached, as the launcher (scripts/launcher/supervisor.ts) starts each app: its own session,
  // hence its own scheduler autogroup on Linux, which decides how the apps share the cores.
  const proc = spawn(process.execPath, [...nodeArgs, script], { env, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  const logs: Record<string, unknown>[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    // Debugging: BENCH_APP_LOGS=1 copies every app output line to stderr; BENCH_GATEWAY_NODE_ARGS adds node flags to the gateway.
    if (process.env.BENCH_APP_LOGS) process.stderr.write(`${l}\n`);
    // Figures, and the events a BENCH_TRACE timeline places (claims, revocations, replica changes).
    if (!/revokeToFreeMs|waitedMs|online share|online demand|replicas \(ongoing/.test(l)) return;
    try {
      logs.push({ _at: Date.now(), ...(JSON.parse(l) as Record<string, unknown>) }); // _at: when this process read it (epoch ms)
    } catch {
      // not a log line
    }
  });
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) throw new Error(`${script} exited with ${proc.exitCode}`);
    if (
      (await fetch(readyUrl).then(
        (x) => x.status,
        () => 0,
      )) === 200
    )
      return { proc, logs };
    if (i > 600) throw new Error(`${script} not ready`);
    await sleep(100);
  }
}

/**
 * Both apps as `npm start` runs them: the shipped model repository, authentication on (a bench
 * admin key), the launcher's allocator settings, every co-location setting at its default
 * unless `overrides` says otherwise (tuned variants).
 */
export async function startStack(databaseUrl: string, nodeName: string, overrides: Record<string, string> = {}): Promise<Stack> {
  const [gwPort, grpcPort, batchPort] = [await freePort(), await freePort(), await freePort()];
  const key = `tdm_bench_${randomBytes(12).toString('hex')}`;
  const common: NodeJS.ProcessEnv = {
    ...process.env,
    ...chooseAllocator('glibc', process.env).env,
    DATABASE_URL: databaseUrl,
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    QUEUE_PREFIX: `benchhybrid${randomBytes(3).toString('hex')}`,
    TANDEM_ADMIN_KEY: key,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    MODEL_REPOSITORY: resolve('models'),
    SCHEDULER_NODE_NAME: nodeName,
    SCHEDULER_DISCOVER_GPUS: 'false',
    BATCH_API_URL: `http://127.0.0.1:${batchPort}`,
    ...overrides,
  };
  const gateway = await app(
    'dist/apps/gateway/src/main.js',
    { ...common, GATEWAY_PORT: String(gwPort), GATEWAY_GRPC_PORT: String(grpcPort) },
    `http://127.0.0.1:${gwPort}/v2/health/ready`,
    (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean),
  );
  // BENCH_BATCH_NODE_ARGS: node flags for the batch app (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof).
  const batch = await app(
    'dist/apps/batch/src/main.js',
    { ...common, BATCH_PORT: String(batchPort) },
    `http://127.0.0.1:${batchPort}/v2/health/ready`,
    (process.env.BENCH_BATCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
  );
  return {
    gwPort,
    grpcPort,
    batchPort,
    key,
    gateway,
    batch,
    stop: () => Promise.all([gateway, batch].map((a) => stopApp(a.proc))).then(() => undefined),
  };
}

function stopApp(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
    proc.once('exit', () => {
      clearTimeout(t);
      res();
    });
    proc.kill('SIGTERM');
  });
}

/** Every pid on this machine. */
const allPids = (): number[] =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number);

/** The direct children of `parent`. */
export function childrenOf(parent: number): number[] {
  return allPids().filter((p) => Number(procStat(p)?.[1]) === parent);
}

/** CPU seconds (user + system) a process has used, 0 if it is gone. */
function cpuOf(pid: number): number {
  return cpuSeconds(pid) || 0;
}

/** The process and its descendants (the batch app's unit processes). */
function tree(root: number): number[] {
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...childrenOf(out[i]!));
  return out;
}

function byName(name: string): number[] {
  return allPids().filter((p) => {
    try {
      return readFileSync(`/proc/${p}/comm`, 'utf8').trim().startsWith(name);
    } catch {
      return false;
    }
  });
}

/** CPU seconds so far per pid, by part: the gateway, the batch app with its unit processes, Postgres, Redis. */
export type CpuSample = Record<'gateway' | 'batch' | 'postgres' | 'redis', Map<number, number>>;

export function cpuSample(s: Stack): CpuSample {
  const of = (pids: number[]): Map<number, number> => new Map(pids.map((p) => [p, cpuOf(p)]));
  return { gateway: of([s.gateway.proc.pid!]), batch: of(tree(s.batch.proc.pid!)), postgres: of(byName('postgres')), redis: of(byName('redis-server')) };
}

/**
 * CPU used per second of wall time between two samples, per part ("1.0" = one core busy). Only
 * processes alive at both samples count (an exiting Postgres backend takes its counters along).
 */
/**
 * The stack's processes by role, for SchedTrace: the gateway, the batch worker, its unit
 * processes, Postgres split by whose connection a backend serves (`backends`: pid → application
 * name), `client` (the load child) and `bench` (this process, whose sampler costs CPU too).
 */
export function processGroups(s: Stack, client: number, backends: ReadonlyMap<number, string>): Record<string, number[]> {
  const batch = s.batch.proc.pid!;
  const pg = byName('postgres');
  const app = (name: string): number[] => pg.filter((p) => backends.get(p) === name);
  return {
    gateway: [s.gateway.proc.pid!],
    batch: [batch],
    units: tree(batch).slice(1),
    'pg(gw)': app('tandem-gateway'),
    'pg(batch)': app('tandem-batch'),
    'pg(rest)': pg.filter((p) => backends.get(p) !== 'tandem-gateway' && backends.get(p) !== 'tandem-batch'),
    client: [client],
    // This process: the sampler itself (BENCH_TRACE only) and the probe.
    bench: [process.pid],
  };
}

export function cpuRate(a: CpuSample, b: CpuSample, seconds: number): string {
  const delta = (x: Map<number, number>, y: Map<number, number>): number => [...y].reduce((sum, [pid, v]) => sum + (x.has(pid) ? v - x.get(pid)! : 0), 0);
  return (Object.keys(a) as (keyof CpuSample)[]).map((k) => `${k} ${(delta(a[k], b[k]) / seconds).toFixed(2)}`).join(', ');
}

/** /proc/stat's first line (all CPUs) in ms: idle (idle + iowait) and steal (USER_HZ = 100). */
export function cpuTimesMs(): { idle: number; steal: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).map(Number);
  return { idle: (f[4]! + f[5]!) * 10, steal: (f[8] ?? 0) * 10 };
}

/** Host steal time so far (ms, all CPUs): the hypervisor running others on this VM's vCPUs. */
export function stealMs(): number {
  return cpuTimesMs().steal;
}
