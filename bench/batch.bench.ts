import 'reflect-metadata';
import { Redis } from 'ioredis';
import { runMigrations } from '@tandem/persistence';
import { loadBatchConfig } from '../apps/batch/src/config/batch.config';
import { startBatch } from '../apps/batch/src/bootstrap';
import { freshDatabase, runChord, sumOfSquares } from './batch-bench.support';
import { runInferBench, type InferBenchResult } from './batch-infer.bench-part';

// Bench entry points may read process.env (house rule).
const ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const CONCURRENCY = process.env.BENCH_BATCH_CONCURRENCY ?? '4';
const CHUNK = Number(process.env.BENCH_BATCH_CHUNK ?? 2_000);
const SIZES = [10_000, 100_000, 1_000_000];
const MODEL_REPOSITORY = process.env.MODEL_REPOSITORY ?? 'models';
const INFER_THREADS = process.env.BATCH_INFER_THREADS ?? '2';
const INFER_ITEMS = Number(process.env.BENCH_INFER_ITEMS ?? 20_000);

async function main(): Promise<void> {
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
    // Warm-up (JIT, pools) so the 10k figure is not a cold-start figure.
    await runChord(app.url, Array.from({ length: 20_000 }, (_, i) => i), CHUNK);
    console.log(`score/summarize chord (chunk ${CHUNK}, worker concurrency ${CONCURRENCY}, Redis queue, in-process API + worker)`);
    for (const n of SIZES) {
      const items = Array.from({ length: n }, (_, i) => i);
      const { seconds: s, submitSeconds, status } = await runChord(app.url, items, CHUNK);
      const ok = status.state === 'succeeded' && status.result?.sum === sumOfSquares(n) && status.result.count === n;
      exact &&= ok;
      seconds[n] = s;
      console.log(`  N=${n.toLocaleString('en')}: ${s.toFixed(3)} s, ${Math.round(n / s).toLocaleString('en')} items/s (submit ${submitSeconds.toFixed(3)} s), sum ${status.result?.sum} ${ok ? 'exact' : 'WRONG'}`);
    }
    const ratio = seconds[1_000_000] / seconds[100_000];
    console.log(`  time(1M)/time(100k) = ${ratio.toFixed(2)} (target ≤ 12); 10k vs Celery 456 s: ${(456 / seconds[10_000]).toFixed(0)}x faster`);
    infer = await runInferBench(app.url, { repo: MODEL_REPOSITORY, threads: Number(INFER_THREADS), items: INFER_ITEMS, chunkSize: 256 });
  } finally {
    await app.app.close();
    const r = new Redis(REDIS_URL);
    const keys = await r.keys(`${prefix}:*`);
    for (let i = 0; i < keys.length; i += 500) await r.del(...keys.slice(i, i + 500));
    r.disconnect();
    await db.drop();
  }
  const round = (x: number | null, d = 3): number | null => (x === null ? null : Number(x.toFixed(d)));
  console.log(
    JSON.stringify({
      bench: 'batch',
      s_10k: round(seconds[10_000]),
      s_100k: round(seconds[100_000]),
      s_1m: round(seconds[1_000_000]),
      exact,
      infer_items_s: round(infer.inferItemsS, 1),
      raw_items_s: round(infer.rawItemsS, 1),
      infer_ratio: round(infer.ratio),
    }),
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
