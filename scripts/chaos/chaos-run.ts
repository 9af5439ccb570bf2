import { resolve } from 'node:path';
import { runMigrations } from '@tandem/persistence';
import { BATCH_CHUNK_QUEUE } from '../../apps/batch/src/jobs/job-catalogue';
import { flushRedis, killWorker, restartPostgres, type FaultContext, type FlushEvidence, type KillEvidence, type RestartEvidence } from './chaos-faults';
import { Proc } from './chaos-proc';
import { freePort, PrivateStores } from './private-stores';
import { QueueWatch } from './queue-watch';
import { requestsReceived } from '../support/gateway-requests';

export interface ChaosOptions {
  items: number;
  chunkSize: number;
  /**
   * Each chunk sleeps this long, so the batch runs long enough for every fault to land on it
   * (faults run one after another, each once the previous one is proven; a fault that would
   * land on a finished batch fails the run).
   */
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
  /** What each fault hit, so a test can tell a fault that landed from one that missed. */
  kills: KillEvidence[];
  flush: FlushEvidence | null;
  restart: RestartEvidence | null;
  batchSeconds: number;
  online: { ok: number; failedWhilePgDown: number; failedOtherwise: number };
  /** Requests still open at the gateway's SIGTERM, those answered before it, and open ones not answered 200. */
  sigterm: { inflight: number; answeredBefore: number; failed: number; exitCode: number | null };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function sumOfSquares(n: number): string {
  const b = BigInt(n);
  return (((b - 1n) * b * (2n * b - 1n)) / 6n).toString();
}

/**
 * Runs a score/summarize batch through real worker processes while SIGKILLing workers,
 * flushing Redis and restarting Postgres, with online traffic on the gateway throughout; then
 * SIGTERMs the gateway under load. Everything on private stores (see PrivateStores). The report
 * carries each fault's evidence (chaos-faults.ts), read from the queue store by a QueueWatch.
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
    kills: [],
    flush: null,
    restart: null,
    batchSeconds: 0,
    online: { ok: 0, failedWhilePgDown: 0, failedOtherwise: 0 },
    sigterm: { inflight: 0, answeredBefore: 0, failed: 0, exitCode: null },
  };
  let onlineRunning = true;
  let pgDown = false;
  let watch: QueueWatch | null = null;
  const requeued: { at: number; chunks: number }[] = [];
  const countRequeues = (line: string): void => {
    if (!line.includes('re-enqueued chunks the queue store lost')) return;
    const chunks = Number(/"chunks":(\d+)/.exec(line)?.[1] ?? 0);
    requeued.push({ at: Date.now(), chunks });
  };
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
    const gateway = new Proc(gatewayMain, {
      ...common,
      GATEWAY_PORT: String(gwPort),
      GATEWAY_GRPC_PORT: String(await freePort()),
      MODEL_REPOSITORY: resolve(o.distRoot, '../models'),
    });
    const api = new Proc(batchMain, { ...common, BATCH_PORT: String(apiPort), BATCH_ROLE: 'api' });
    procs.push(gateway, api);
    api.onLine(countRequeues);
    const newWorker = async (): Promise<Proc> => {
      const w = new Proc(batchMain, { ...common, BATCH_PORT: String(await freePort()), BATCH_ROLE: 'worker' });
      w.onLine(countRequeues);
      procs.push(w);
      return w;
    };
    const workers = [await newWorker(), await newWorker()];
    await Promise.all([
      gateway.waitFor(/gateway REST listening/, 60_000),
      api.waitFor(/batch API listening/, 60_000),
      ...workers.map((w) => w.waitFor(/listening/, 60_000)),
    ]);
    o.log('stack up: gateway, batch API, 2 workers on private Postgres and Redis');
    watch = new QueueWatch(stores.redisUrl, `${common.QUEUE_PREFIX}:${BATCH_CHUNK_QUEUE}`);
    watch.start();

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
    // Faults one after another, each on the running batch and proven before the next one.
    const ctx: FaultContext = {
      watch,
      stores,
      log: o.log,
      progress: async () => {
        // The API may still be reconnecting after the Postgres restart.
        for (let tries = 0; ; tries++) {
          const r = await fetch(`${api8100}/v1/batches/${id}`, { signal: AbortSignal.timeout(5_000) }).catch(() => null);
          if (r?.status === 200) {
            const b = (await r.json()) as { state: string; counts: { chunksPending: number } };
            return { state: b.state, pending: b.counts.chunksPending };
          }
          if (tries >= 100) throw new Error(`batch API unavailable: ${r?.status ?? 'no answer'}`);
          await sleep(300);
        }
      },
      requeuedSince: (t) => requeued.filter((r) => r.at >= t).reduce((n, r) => n + r.chunks, 0),
    };
    const kill = async (k: number): Promise<void> => {
      const i = k % workers.length;
      report.kills.push(await killWorker(ctx, workers[i]!, async () => (workers[i] = await newWorker()), workers.length));
      report.workerKills++;
    };
    const plan: (() => Promise<void>)[] = [];
    if (o.workerKills > 0) plan.push(() => kill(0));
    if (o.flushRedis) {
      plan.push(async () => {
        report.flush = await flushRedis(ctx);
        report.redisFlushes++;
      });
    }
    if (o.workerKills > 1) plan.push(() => kill(1));
    if (o.restartPostgres) {
      plan.push(async () => {
        report.restart = await restartPostgres(ctx, 1_500, (d) => (pgDown = d));
        report.postgresRestarts++;
      });
    }
    for (let k = 2; k < o.workerKills; k++) plan.push(() => kill(k));
    // The first fault waits for the stack to be working: one chunk committed.
    while (((await progress())?.progress ?? 0) === 0) {
      if (Date.now() > t0 + 120_000) throw new Error('the batch made no progress in 2 minutes');
      await sleep(100);
    }
    for (const fault of plan) await fault();
    const deadline = Date.now() + 10 * 60_000;
    let last: Awaited<ReturnType<typeof progress>> = null;
    for (;;) {
      last = (await progress()) ?? last;
      if (last && ['succeeded', 'failed', 'cancelled'].includes(last.state)) break;
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

    // SIGTERM the gateway while cls requests are queued and in flight (8 images each, so most are
    // still open at the SIGTERM; admission may refuse some at once: more than its queue time bound).
    const x = Buffer.from(new Float32Array(8 * 3 * 48 * 192).fill(0.1).buffer);
    const header = Buffer.from(
      JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [8, 3, 48, 192], parameters: { binary_data_size: x.length } }] }),
    );
    const body = Buffer.concat([header, x]);
    let killedAt = Infinity;
    const inflight = Array.from({ length: 30 }, () =>
      fetch(`${gw}/v2/models/ppocr_cls/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
        body,
      })
        .then(async (r) => (await r.arrayBuffer(), { status: r.status, at: Date.now() }))
        .catch(() => ({ status: 0, at: Date.now() })),
    );
    // SIGTERM only once the gateway holds every one of them (queued, running or answered).
    const held = async (): Promise<number> => {
      const r = await requestsReceived(gw, 'ppocr_cls');
      return r.answered + r.ongoing;
    };
    const waitUntil = Date.now() + 10_000;
    while ((await held()) < inflight.length && Date.now() < waitUntil) await sleep(5);
    killedAt = Date.now();
    const exit = gateway.kill('SIGTERM');
    const answers = await Promise.all(inflight);
    // Answered before the SIGTERM: admission's own answers (a 503 there is load shedding, not the
    // drain); everything still open at the SIGTERM must be answered 200.
    const open = answers.filter((a) => a.at >= killedAt);
    const answeredBefore = answers.length - open.length;
    report.sigterm = { inflight: open.length, answeredBefore, failed: open.filter((a) => a.status !== 200).length, exitCode: await exit };
    o.log(
      `gateway SIGTERM with ${open.length} requests in flight (${answeredBefore} answered before it): ${report.sigterm.failed} failed, exit ${report.sigterm.exitCode}`,
    );
    return report;
  } finally {
    onlineRunning = false;
    await watch?.stop();
    await Promise.all(procs.map((p) => p.kill('SIGKILL').catch(() => undefined)));
    await stores.stop().catch(() => undefined);
  }
}
