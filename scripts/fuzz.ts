import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { Client } from 'pg';
import { runMigrations } from '@tandem/persistence';
import { loadBatchConfig } from '../apps/batch/src/config/batch.config';
import { startBatch } from '../apps/batch/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { startGateway } from '../apps/gateway/src/bootstrap';
import { runFuzz } from './fuzz/fuzz-runner';

/**
 * `npm run fuzz`: ≥10,000 generated and mutated OIP REST bodies and batch submissions against
 * a real gateway and batch app (auth on), on a scratch database. Fails on any 5xx, connection
 * error or hang, and reports RSS growth between the first and last thousand cases.
 */
const env = process.env;
const CASES = Number(env.FUZZ_CASES ?? 10_000);
const SEED = Number(env.FUZZ_SEED ?? 1);
const ONLY = env.FUZZ_ONLY === 'gateway' || env.FUZZ_ONLY === 'batch' ? env.FUZZ_ONLY : undefined;
const ADMIN_URL = env.FUZZ_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function main(): Promise<number> {
  const dbName = `tandem_fuzz_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${dbName}"`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${dbName}`;
  const key = `fuzz-admin-${randomBytes(12).toString('hex')}`;
  try {
    await runMigrations(url.toString());
    const common = {
      DATABASE_URL: url.toString(),
      REDIS_URL: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      QUEUE_PREFIX: `fz${randomBytes(3).toString('hex')}`,
      LOG_LEVEL: 'error',
      HOST: '127.0.0.1',
      TANDEM_ADMIN_KEY: key,
    };
    const gw = await startGateway(
      loadGatewayConfig({
        ...common,
        GATEWAY_PORT: '0',
        GATEWAY_GRPC_PORT: '0',
        MODEL_REPOSITORY: resolve(__dirname, '../../models'),
        GATEWAY_BODY_LIMIT_MB: '8',
      }),
    );
    const batch = await startBatch(loadBatchConfig({ ...common, BATCH_PORT: '0', BATCH_BODY_LIMIT_MB: '8' }));
    const t0 = Date.now();
    const warm = await runFuzz({ gatewayUrl: gw.url, batchUrl: batch.url, key, only: ONLY }, SEED, Math.min(1_000, CASES));
    global.gc?.();
    const rssStart = process.memoryUsage().rss;
    const heapStart = process.memoryUsage().heapUsed;
    const rest = await runFuzz({ gatewayUrl: gw.url, batchUrl: batch.url, key, only: ONLY }, SEED, Math.max(0, CASES - 1_000), 8, 10_000, 1_000);
    global.gc?.();
    const rssEnd = process.memoryUsage().rss;
    const heapEnd = process.memoryUsage().heapUsed;
    const byStatus: Record<string, number> = { ...warm.byStatus };
    for (const [k, v] of Object.entries(rest.byStatus)) byStatus[k] = (byStatus[k] ?? 0) + v;
    const defects = [...warm.defects, ...rest.defects];
    const cases = warm.cases + rest.cases;
    process.stdout.write(`fuzz: ${cases} cases in ${((Date.now() - t0) / 1000).toFixed(1)} s, seed ${SEED}\n`);
    for (const [k, v] of Object.entries(byStatus).sort()) process.stdout.write(`  ${k.padEnd(18)} ${v}\n`);
    for (const d of defects.slice(0, 20)) process.stdout.write(`  DEFECT #${d.i} ${d.kind}: ${d.outcome} ${d.detail.slice(0, 160)}\n`);
    const growth = (rssEnd - rssStart) / rssStart;
    process.stdout.write(`  JS heap after warm-up ${(heapStart / 2 ** 20).toFixed(0)} MiB, at end ${(heapEnd / 2 ** 20).toFixed(0)} MiB\n`);
    process.stdout.write(
      `  RSS after warm-up ${(rssStart / 2 ** 20).toFixed(0)} MiB, at end ${(rssEnd / 2 ** 20).toFixed(0)} MiB (${(growth * 100).toFixed(1)}%)\n`,
    );
    await Promise.all([gw.app.close(), batch.app.close()]);
    process.stdout.write(
      `${JSON.stringify({ bench: 'fuzz', cases, seed: SEED, by_status: byStatus, defects: defects.length, rss_start_mib: Math.round(rssStart / 2 ** 20), rss_end_mib: Math.round(rssEnd / 2 ** 20), heap_start_mib: Math.round(heapStart / 2 ** 20), heap_end_mib: Math.round(heapEnd / 2 ** 20) })}\n`,
    );
    return defects.length === 0 ? 0 : 1;
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`fuzz: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
