import 'reflect-metadata';
import { Redis } from 'ioredis';
import { runMigrations } from '@tandem/persistence';
import { loadBatchConfig } from '../apps/batch/src/config/batch.config';
import { startBatch } from '../apps/batch/src/bootstrap';
import { freshDatabase, runChord, sumOfSquares } from './batch-bench.support';
import { runInferBench, type InferBenchResult } from './batch-infer.bench-part';
import { runBigChord, type BigChordResult } from './batch-chord-big.bench-part';
import { runFileBatchPhase, type FileBatchResult } from './batch-file-night.bench-part';
import { startStack } from './support/hybrid-stack';

// Bench entry points may read process.env (house rule).
const ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const CONCURRENCY = process.env.BENCH_BATCH_CONCURRENCY ?? '4';
const CHUNK = Number(process.env.BENCH_BATCH_CHUNK ?? 2_000);
const SIZES = [10_000, 100_000, 1_000_000];
const MODEL_REPOSITORY = process.env.MODEL_REPOSITORY ?? 'models';
const INFER_THREADS = process.env.BATCH_INFER_THREADS ?? '2';
const INFER_ITEMS = Number(process.env.BENCH_INFER_ITEMS ?? 20_000);
// Issue 15's night-time phases run on the shipped stack (both apps as `npm start` runs them, auth on).
const PHASES = new Set((process.env.BENCH_PHASES ?? 'chord,infer,file,chord30m').split(','));
const FILE_REQUESTS = Number(process.env.BENCH_FILE_REQUESTS ?? 100_000);
const BIG_CHORD_ITEMS = Number(process.env.BENCH_CHORD_ITEMS ?? 30_000_000);
const BIG_CHORD_CHUNK = Number(process.env.BENCH_CHORD_CHUNK ?? 100_000);
const ONLINE_SECONDS = Number(process.env.BENCH_ONLINE_SECONDS ?? 10);
/**
 * The only settings changed from the shipped defaults, for the file phase: a 100 k-request file of
 * JSON tensors is ~6.4 GB and 100 k lines (defaults: 200 MB, 50 k lines per file).
 */
// BENCH_ENV (JSON): more overrides for a labelled tuned variant (e.g. {"BATCH_UNIT_CPU_POLICY":"inherit"}).
const SHIPPED_OVERRIDES: Record<string, string> = {
  BATCH_FILE_LIMIT_MB: '16384',
  BATCH_FILE_LINE_LIMIT: '1000000',
  ...(JSON.parse(process.env.BENCH_ENV ?? '{}') as Record<string, string>),
};

async function main(): Promise<void> {
  const [inProcess, night] = PHASES.has('chord') || PHASES.has('infer') ? await inProcessPhases() : [null, null];
  const shipped = await shippedPhases();
  const round = (x: number | null | undefined, d = 3): number | null => (x === null || x === undefined ? null : Number(x.toFixed(d)));
  const f = shipped.file;
  const c = shipped.chord;
  console.log(
    JSON.stringify({
      bench: 'batch',
      ...(inProcess ?? {}),
      ...(night ? { infer_items_s: round(night.inferItemsS, 1), raw_items_s: round(night.rawItemsS, 1), infer_ratio: round(night.ratio) } : {}),
      ...(f
        ? {
            file_requests: f.requests,
            file_mb: round(f.fileBytes / 1e6, 1),
            file_upload_mb_s: round(f.uploadMBs, 1),
            file_items_s: round(f.itemsS, 1),
            file_raw_items_s: round(f.rawItemsS, 1),
            file_ratio: round(f.ratio),
            file_quiet_items_s: round(f.quietItemsS, 1),
            file_quiet_ratio: round(f.quietRatio),
            online_rate: round(f.onlineRate, 1),
            online_p99_before_ms: round(f.p99Before, 1),
            online_p99_during_ms: round(f.p99During, 1),
            online_p99_ratio: round(f.p99Ratio, 2),
            file_overlapped: f.overlapped,
            file_failed: f.failed,
            online_errors: f.onlineErrors,
            file_peak_rss_mib: Math.round(f.peakRssBytes / 2 ** 20),
            file_exactly_once: f.exactlyOnce,
          }
        : {}),
      ...(c
        ? {
            chord_items: c.items,
            chord_upload_s: round(c.uploadS, 2),
            chord_e2e_s: round(c.e2eS, 2),
            chord_exact: c.exact,
            chord_peak_rss_mib: Math.round(c.peakRssBytes / 2 ** 20),
          }
        : {}),
      errors: shipped.errors,
    }),
  );
}

/** File batch + online p99, then the 30 M chord, on one shipped stack (fresh database). */
async function shippedPhases(): Promise<{ file: FileBatchResult | null; chord: BigChordResult | null; errors: number }> {
  if (!PHASES.has('file') && !PHASES.has('chord30m')) return { file: null, chord: null, errors: 0 };
  const db = await freshDatabase(ADMIN_URL, `tandem_bench_batch_night_${process.pid}`, runMigrations);
  const stack = await startStack(db.url, `bench-batch-${process.pid}`, SHIPPED_OVERRIDES);
  let file: FileBatchResult | null = null;
  let chord: BigChordResult | null = null;
  let errors = 0;
  try {
    console.log(`shipped stack (auth on, defaults except ${JSON.stringify(SHIPPED_OVERRIDES)}), batch app pid ${stack.batch.proc.pid}`);
    if (PHASES.has('file')) {
      try {
        file = await runFileBatchPhase(stack, {
          requests: FILE_REQUESTS,
          onlineSeconds: ONLINE_SECONDS,
          repo: MODEL_REPOSITORY,
          threads: Number(INFER_THREADS),
        });
        errors += file.failed + file.onlineErrors + (file.state === 'completed' ? 0 : 1) + (file.exactlyOnce ? 0 : 1);
      } catch (e) {
        errors++;
        console.log(`  ERROR in the file phase: ${(e as Error).message}`);
      }
    }
    if (PHASES.has('chord30m')) {
      try {
        chord = await runBigChord({
          batchPort: stack.batchPort,
          batchPid: stack.batch.proc.pid!,
          key: stack.key,
          items: BIG_CHORD_ITEMS,
          chunkSize: BIG_CHORD_CHUNK,
        });
        errors += chord.exact ? 0 : 1;
      } catch (e) {
        errors++;
        console.log(`  ERROR in the chord phase: ${(e as Error).message}`);
      }
    }
  } finally {
    await stack.stop();
    await db.drop();
  }
  return { file, chord, errors };
}

/** The original figures: chords of 10k/100k/1M inline items and the 20k infer NDJSON chord, in-process, auth off. */
async function inProcessPhases(): Promise<[Record<string, number | boolean | null> | null, InferBenchResult | null]> {
  const prefix = `bench${process.pid}`;
  const db = await freshDatabase(ADMIN_URL, `tandem_bench_batch_${process.pid}`, runMigrations);
  const cfg = loadBatchConfig({
    DATABASE_URL: db.url,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'warn',
    TANDEM_AUTH: 'off', // auth has its own tests (test/auth.e2e.spec.ts)
    HOST: '127.0.0.1',
    BATCH_PORT: '0',
    BATCH_CONCURRENCY: CONCURRENCY,
    MODEL_REPOSITORY,
    BATCH_INFER_THREADS: INFER_THREADS,
  });
  const app = await startBatch(cfg);
  const seconds: Record<number, number> = {};
  let infer: InferBenchResult = { inferItemsS: null, rawItemsS: null, ratio: null };
  let exact = true;
  try {
    if (PHASES.has('chord')) await chordSizes();
    if (PHASES.has('infer'))
      infer = await runInferBench(app.url, { repo: MODEL_REPOSITORY, threads: Number(INFER_THREADS), items: INFER_ITEMS, chunkSize: 256 });
  } finally {
    await app.app.close();
    const r = new Redis(REDIS_URL);
    const keys = await r.keys(`${prefix}:*`);
    for (let i = 0; i < keys.length; i += 500) await r.del(...keys.slice(i, i + 500));
    r.disconnect();
    await db.drop();
  }
  async function chordSizes(): Promise<void> {
    // Warm-up (JIT, pools) so the 10k figure is not a cold-start figure.
    await runChord(
      app.url,
      Array.from({ length: 20_000 }, (_, i) => i),
      CHUNK,
    );
    console.log(`score/summarize chord (chunk ${CHUNK}, worker concurrency ${CONCURRENCY}, Redis queue, in-process API + worker)`);
    for (const n of SIZES) {
      const items = Array.from({ length: n }, (_, i) => i);
      const { seconds: s, submitSeconds, status } = await runChord(app.url, items, CHUNK);
      const ok = status.state === 'succeeded' && status.result?.sum === sumOfSquares(n) && status.result.count === n;
      exact &&= ok;
      seconds[n] = s;
      console.log(
        `  N=${n.toLocaleString('en')}: ${s.toFixed(3)} s, ${Math.round(n / s).toLocaleString('en')} items/s (submit ${submitSeconds.toFixed(3)} s), sum ${status.result?.sum} ${ok ? 'exact' : 'WRONG'}`,
      );
    }
    const ratio = seconds[1_000_000] / seconds[100_000];
    console.log(`  time(1M)/time(100k) = ${ratio.toFixed(2)} (target ≤ 12); 10k vs Celery 456 s: ${(456 / seconds[10_000]).toFixed(0)}x faster`);
  }
  const round = (x: number | undefined, d = 3): number | null => (x === undefined ? null : Number(x.toFixed(d)));
  const sizes = PHASES.has('chord') ? { s_10k: round(seconds[10_000]), s_100k: round(seconds[100_000]), s_1m: round(seconds[1_000_000]), exact } : null;
  return [sizes, PHASES.has('infer') ? infer : null];
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
