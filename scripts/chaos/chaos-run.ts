import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { runMigrations } from '@tandem/persistence';
import { freePort, PrivateStores } from './private-stores';

export interface ChaosOptions {
  items: number;
  chunkSize: number;
  /** Each chunk sleeps this long, so the batch runs long enough for the faults to land. */
  chunkSleepMs: number;
  workerKills: number;
  flushRedis: boolean;
  restartPostgres: boolean;
  log: (s: string) => void;
  /** Compiled app entry points (dist/apps/...). */
  distRoot: string;
}

export interface ChaosReport {
  items: number;
  exact: boolean;
  expectedSum: string;
  gotSum: string | null;
  state: string;
  workerKills: number;
  redisFlushes: number;
  postgresRestarts: number;
  batchSeconds: number;
  online: { ok: number; failedWhilePgDown: number; failedOtherwise: number };
  sigterm: { inflight: number; failed: number; exitCode: number | null };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function sumOfSquares(n: number): string {
  const b = BigInt(n);
  return (((b - 1n) * b * (2n * b - 1n)) / 6n).toString();
}

class Proc {
  readonly logs: string[] = [];
  readonly child: ChildProcess;
  constructor(script: string, env: Record<string, string>) {
    this.child = spawn(process.execPath, [script], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer): void => {
      this.logs.push(b.toString());
      if (this.logs.length > 200) this.logs.shift();
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
  }
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  async waitFor(re: RegExp, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!re.test(this.logs.join(''))) {
      if (!this.alive) throw new Error(`process exited early:\n${this.logs.join('').slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}:\n${this.logs.join('').slice(-2000)}`);
      await sleep(50);
    }
  }
  async kill(sig: NodeJS.Signals): Promise<number | null> {
    if (!this.alive) return this.child.exitCode;
    const done = new Promise<number | null>((r) => this.child.once('exit', (code) => r(code)));
    this.child.kill(sig);
    return done;
  }
}

/**
 * Runs a score/summarize batch through real worker processes while SIGKILLing workers,
 * flushing Redis and restarting Postgres, with online traffic on the gateway throughout; then
 * SIGTERMs the gateway under load. Everything on private stores (see PrivateStores).
 */
export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const stores = new PrivateStores();
  const procs: Proc[] = [];
  const report: ChaosReport = {
    items: o.items,
    exact: false,
    expectedSum: sumOfSquares(o.items),
    gotSum: null,
    state: 'unknown',
    workerKills: 0,
    redisFlushes: 0,
    postgresRestarts: 0,
    batchSeconds: 0,
    online: { ok: 0, failedWhilePgDown: 0, failedOtherwise: 0 },
    sigterm: { inflight: 0, failed: 0, exitCode: null },
  };
  let onlineRunning = true;
  let pgDown = false;
  try {
    await stores.start(o.log);
    await runMigrations(stores.databaseUrl);
    const [gwPort, apiPort] = [await freePort(), await freePort()];
    const common = {
      DATABASE_URL: stores.databaseUrl,
      REDIS_URL: stores.redisUrl,
      QUEUE_PREFIX: 'chaos',
      LOG_LEVEL: 'info',
      HOST: '127.0.0.1',
      TANDEM_AUTH: 'off',
      BATCH_ENABLE_TEST_TASKS: 'true',
      BATCH_BACKOFF_MS: '100',
      BATCH_MAX_ATTEMPTS: '20',
      BATCH_RECONCILE_MS: '1000',
      BATCH_LOCK_MS: '3000',
      BATCH_STALLED_INTERVAL_MS: '1000',
      BATCH_CONCURRENCY: '2',
    };
    const batchMain = resolve(o.distRoot, 'apps/batch/src/main.js');
    const gatewayMain = resolve(o.distRoot, 'apps/gateway/src/main.js');
    const gateway = new Proc(gatewayMain, { ...common, GATEWAY_PORT: String(gwPort), GATEWAY_GRPC_PORT: String(await freePort()), MODEL_REPOSITORY: resolve(o.distRoot, '../models') });
    const api = new Proc(batchMain, { ...common, BATCH_PORT: String(apiPort), BATCH_ROLE: 'api' });
    procs.push(gateway, api);
    const newWorker = async (): Promise<Proc> => {
      const w = new Proc(batchMain, { ...common, BATCH_PORT: String(await freePort()), BATCH_ROLE: 'worker' });
      procs.push(w);
      return w;
    };
    const workers = [await newWorker(), await newWorker()];
    await Promise.all([gateway.waitFor(/gateway REST listening/, 60_000), api.waitFor(/batch API listening/, 60_000), ...workers.map((w) => w.waitFor(/listening/, 60_000))]);
    o.log('stack up: gateway, batch API, 2 workers on private Postgres and Redis');

    // Online traffic on the scorer for the whole run.
    const gw = `http://127.0.0.1:${gwPort}`;
    const online = (async () => {
      while (onlineRunning) {
        const down = pgDown;
        try {
          const r = await fetch(`${gw}/v2/models/scorer/infer`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: [0.3] }] }),
            signal: AbortSignal.timeout(5_000),
          });
          await r.arrayBuffer();
          if (r.status === 200) report.online.ok++;
          else if (down || pgDown) report.online.failedWhilePgDown++;
          else report.online.failedOtherwise++;
        } catch {
          if (down || pgDown) report.online.failedWhilePgDown++;
          else report.online.failedOtherwise++;
        }
        await sleep(20);
      }
    })();

    const api8100 = `http://127.0.0.1:${apiPort}`;
    const items = Array.from({ length: o.items }, (_, n) => ({ n, sleepMs: 0 }));
    for (let c = 0; c < o.items; c += o.chunkSize) items[c] = { n: c, sleepMs: o.chunkSleepMs };
    const t0 = Date.now();
    const sub = await fetch(`${api8100}/v1/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ task: 'test-probe', items, reducer: 'summarize', chunkSize: o.chunkSize }),
    });
    if (sub.status !== 201 && sub.status !== 202) throw new Error(`submit: ${sub.status} ${await sub.text()}`);
    const id = ((await sub.json()) as { id: string }).id;
    o.log(`batch ${id}: ${o.items} items in chunks of ${o.chunkSize}`);

    const progress = async (): Promise<{ state: string; progress: number; result: { sum?: string } | null } | null> => {
      try {
        const r = await fetch(`${api8100}/v1/batches/${id}`, { signal: AbortSignal.timeout(3_000) });
        return r.status === 200 ? ((await r.json()) as { state: string; progress: number; result: { sum?: string } | null }) : null;
      } catch {
        return null;
      }
    };
    // Faults, spread over the batch's progress.
    const faults: { at: number; run: () => Promise<void> }[] = [];
    for (let k = 0; k < o.workerKills; k++) {
      faults.push({
        at: 0.1 + (0.75 * k) / Math.max(1, o.workerKills),
        run: async () => {
          const i = k % workers.length;
          await workers[i]!.kill('SIGKILL');
          report.workerKills++;
          o.log(`SIGKILL worker ${i} (kill ${report.workerKills})`);
          workers[i] = await newWorker();
        },
      });
    }
    if (o.flushRedis) faults.push({ at: 0.35, run: async () => (await stores.flushAll(), report.redisFlushes++, o.log('FLUSHALL on Redis')) });
    if (o.restartPostgres) {
      faults.push({
        at: 0.55,
        run: async () => {
          pgDown = true;
          o.log('restarting Postgres');
          await stores.restartPostgres(1_500);
          pgDown = false;
          report.postgresRestarts++;
          o.log('Postgres back');
        },
      });
    }
    faults.sort((a, b) => a.at - b.at);
    const deadline = Date.now() + 10 * 60_000;
    let last: Awaited<ReturnType<typeof progress>> = null;
    for (;;) {
      last = (await progress()) ?? last;
      const p = last?.progress ?? 0;
      while (faults.length && (p / 100 >= faults[0]!.at || (last && last.state !== 'running' && last.state !== 'queued'))) await faults.shift()!.run();
      if (last && ['succeeded', 'failed', 'cancelled'].includes(last.state) && faults.length === 0) break;
      if (Date.now() > deadline) throw new Error(`batch not done in time: ${JSON.stringify(last)}`);
      await sleep(100);
    }
    report.batchSeconds = (Date.now() - t0) / 1000;
    report.state = last!.state;
    report.gotSum = last!.result?.sum ?? null;
    report.exact = report.state === 'succeeded' && report.gotSum === report.expectedSum;
    o.log(`batch ${report.state} in ${report.batchSeconds.toFixed(1)} s: sum ${report.gotSum} (expected ${report.expectedSum})`);

    await sleep(1_000); // online traffic after the faults
    onlineRunning = false;
    await online;

    // SIGTERM the gateway while cls requests are queued and in flight.
    const x = Buffer.from(new Float32Array(8 * 3 * 48 * 192).fill(0.1).buffer);
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [8, 3, 48, 192], parameters: { binary_data_size: x.length } }] }));
    const body = Buffer.concat([header, x]);
    const inflight = Array.from({ length: 30 }, () =>
      fetch(`${gw}/v2/models/ppocr_cls/infer`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) }, body })
        .then(async (r) => (await r.arrayBuffer(), r.status))
        .catch(() => 0),
    );
    // SIGTERM only once the gateway holds every one of them (queued, running or answered).
    const held = async (): Promise<number> => {
      const text = await (await fetch(`${gw}/metrics`)).text();
      const num = (re: RegExp): number => [...text.matchAll(re)].reduce((a, m) => a + Number(m[1]), 0);
      return num(/tandem_inference_ongoing_requests\{model="ppocr_cls"\} (\d+)/g) + num(/tandem_inference_requests_total\{model="ppocr_cls"[^}]*\} (\d+)/g);
    };
    const waitUntil = Date.now() + 10_000;
    while ((await held()) < inflight.length && Date.now() < waitUntil) await sleep(5);
    const exit = gateway.kill('SIGTERM');
    const statuses = await Promise.all(inflight);
    report.sigterm = { inflight: statuses.length, failed: statuses.filter((s) => s !== 200).length, exitCode: await exit };
    o.log(`gateway SIGTERM with ${statuses.length} requests in flight: ${report.sigterm.failed} failed, exit ${report.sigterm.exitCode}`);
    return report;
  } finally {
    onlineRunning = false;
    await Promise.all(procs.map((p) => p.kill('SIGKILL').catch(() => undefined)));
    await stores.stop().catch(() => undefined);
  }
}
