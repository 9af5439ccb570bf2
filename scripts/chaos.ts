import 'reflect-metadata';
import { resolve } from 'node:path';
import { runChaos } from './chaos/chaos-run';

/**
 * `npm run chaos`: a 100k-item batch survives 5 worker SIGKILLs, a Redis FLUSHALL and a Postgres
 * restart with an exact result; the gateway serves throughout and loses nothing on SIGTERM. Each
 * fault must land on the running batch and prove what it hit (held chunks re-run, queued jobs
 * lost and re-enqueued); 400 chunks of ≥1 s leave time for all of them.
 */
const items = Number(process.env.CHAOS_ITEMS ?? 100_000);
runChaos({
  items,
  chunkSize: 250,
  chunkSleepMs: Number(process.env.CHAOS_CHUNK_SLEEP_MS ?? 1_000),
  workerKills: 5,
  flushRedis: true,
  restartPostgres: true,
  distRoot: resolve(__dirname, '..'),
  log: (s) => process.stdout.write(`[chaos] ${s}\n`),
}).then(
  (r) => {
    process.stdout.write(`${JSON.stringify({ bench: 'chaos', ...r })}\n`);
    const faultsLanded =
      r.kills.length === 5 &&
      r.kills.every((k) => k.held.length > 0 && k.rerun) &&
      r.flush !== null &&
      r.flush.queuedBefore > 0 &&
      r.flush.queuedAfter === 0 &&
      r.flush.requeued > 0 &&
      r.restart !== null;
    const ok = r.exact && faultsLanded && r.online.failedOtherwise === 0 && r.sigterm.failed === 0 && r.sigterm.exitCode === 0;
    process.exit(ok ? 0 : 1);
  },
  (e: unknown) => {
    process.stderr.write(`chaos: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
