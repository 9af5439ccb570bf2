import 'reflect-metadata';
import { resolve } from 'node:path';
import { ConfigValidationError, redactUrls } from '@tandem/shared';
import { runMigrations } from '@tandem/persistence';
import { loadBatchConfig } from '../apps/batch/src/config/batch.config';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { chooseAllocator } from './launcher/allocator-env';
import { EmbeddedPostgres } from './launcher/embedded-postgres';
import { firstAdminKey } from './launcher/first-admin-key';
import { loadLauncherConfig, type LauncherConfig } from './launcher/launcher.config';
import { ensureDatabase, postgresAnswers, redisAnswers, waitForHttp200 } from './launcher/probes';
import { exitReason, stopChildren, Supervised } from './launcher/supervisor';

/**
 * `npm start`: resolve Postgres and the queue store, migrate, start the gateway and the batch
 * app, print where they listen, and stop everything cleanly on Ctrl-C / SIGTERM.
 */
// Every line goes through redactUrls: a message may quote DATABASE_URL / REDIS_URL (or an
// error that does), and their passwords must not reach terminals or CI logs.
const say = (msg: string): void => {
  process.stdout.write(`[tandem] ${redactUrls(msg)}\n`);
};

class StartError extends Error {}

async function resolveDatabase(cfg: LauncherConfig): Promise<{ url: string; mode: string; embedded?: EmbeddedPostgres }> {
  if (cfg.databaseUrl) {
    const probe = await postgresAnswers(cfg.databaseUrl);
    if (!probe.ok) throw new StartError(`DATABASE_URL is set but Postgres does not answer there: ${probe.reason}`);
    return { url: cfg.databaseUrl, mode: 'external Postgres (DATABASE_URL)' };
  }
  const maint = new URL(cfg.localDatabaseUrl);
  maint.pathname = '/postgres';
  if ((await postgresAnswers(maint.toString())).ok) {
    await ensureDatabase(cfg.localDatabaseUrl);
    return { url: cfg.localDatabaseUrl, mode: `local Postgres at ${maint.host}` };
  }
  const embedded = new EmbeddedPostgres(resolve(cfg.dataDir, 'postgres'), cfg.embeddedPgPort, say);
  await embedded.start();
  return {
    url: embedded.url,
    mode: `EMBEDDED Postgres (nothing answered at ${maint.host}; data in ${resolve(cfg.dataDir, 'postgres')}, port ${cfg.embeddedPgPort})`,
    embedded,
  };
}

async function resolveQueue(cfg: LauncherConfig, databaseUrl: string): Promise<{ env: NodeJS.ProcessEnv; mode: string }> {
  if (cfg.queueBackend === 'postgres') return { env: { QUEUE_BACKEND: 'postgres' }, mode: 'BullMQ on PostgreSQL (QUEUE_BACKEND=postgres)' };
  if (cfg.redisUrl) {
    const probe = await redisAnswers(cfg.redisUrl);
    if (!probe.ok) throw new StartError(`REDIS_URL is set but Redis does not answer there: ${probe.reason}`);
    return { env: { QUEUE_BACKEND: 'redis', REDIS_URL: cfg.redisUrl }, mode: 'BullMQ on Redis (REDIS_URL)' };
  }
  if (cfg.queueBackend === 'redis' || (await redisAnswers(cfg.localRedisUrl)).ok) {
    const probe = await redisAnswers(cfg.localRedisUrl);
    if (!probe.ok) throw new StartError(`QUEUE_BACKEND=redis but Redis does not answer at ${cfg.localRedisUrl}: ${probe.reason}`);
    return { env: { QUEUE_BACKEND: 'redis', REDIS_URL: cfg.localRedisUrl }, mode: `BullMQ on local Redis at ${new URL(cfg.localRedisUrl).host}` };
  }
  void databaseUrl;
  return {
    env: { QUEUE_BACKEND: 'postgres' },
    mode: `BullMQ on its PostgreSQL backend (no Redis answered at ${new URL(cfg.localRedisUrl).host})`,
  };
}

async function main(): Promise<number> {
  let cfg: LauncherConfig;
  let childEnv: NodeJS.ProcessEnv;
  let allocator: ReturnType<typeof chooseAllocator>;
  try {
    cfg = loadLauncherConfig(process.env);
    try {
      allocator = chooseAllocator(cfg.malloc, process.env);
    } catch (e) {
      throw new ConfigValidationError([(e as Error).message]);
    }
    // Validate both apps' settings before starting anything, so a typo fails in a second.
    loadGatewayConfig(process.env);
    loadBatchConfig(process.env);
  } catch (e) {
    if (e instanceof ConfigValidationError) {
      process.stderr.write(`[tandem] ${e.message}\n`);
      return 2;
    }
    throw e;
  }

  const db = await resolveDatabase(cfg);
  const children: Supervised[] = [];
  let stopping = false;
  let exitCode = 0;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((r) => {
    resolveDone = r;
  });
  process.on('exit', () => {
    for (const c of children) if (c.alive()) c.proc.kill('SIGKILL');
    db.embedded?.killNow();
  });

  const shutdown = async (why: string, code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    say(`stopping (${why})`);
    await stopChildren(children, 35_000);
    await db.embedded?.stop();
    say('stopped');
    resolveDone();
  };

  try {
    const queue = await resolveQueue(cfg, db.url);
    say(`database: ${db.mode}`);
    say(`queue:    ${queue.mode}`);
    const ran = await runMigrations(db.url);
    say(ran.length ? `migrations applied: ${ran.join(', ')}` : 'migrations: up to date');
    // PCI-bus GPU order from the start (both apps also set it at boot): the ledger's GPU indices are nvidia-smi's.
    childEnv = { ...process.env, DATABASE_URL: db.url, ...queue.env, ...allocator.env, CUDA_DEVICE_ORDER: 'PCI_BUS_ID' };
    say(`malloc:   ${allocator.description}`);
    // The admin panel's batch proxy follows the batch app's port unless told otherwise.
    childEnv.BATCH_API_URL ??= `http://127.0.0.1:${loadBatchConfig(childEnv).port}`;

    const gatewayCfg = loadGatewayConfig(childEnv);
    const batchCfg = loadBatchConfig(childEnv);
    const newKey = await firstAdminKey(db.url, gatewayCfg.auth);
    if (newKey) say(`created the first admin API key — shown only now, store it: ${newKey}`);
    if (!gatewayCfg.auth.enabled) say('authentication is OFF (TANDEM_AUTH=off)');
    const host = (h: string): string => (h === '0.0.0.0' ? '127.0.0.1' : h);
    const gatewayUrl = `http://${host(gatewayCfg.host)}:${gatewayCfg.port}`;
    const batchUrl = `http://${host(batchCfg.host)}:${batchCfg.port}`;
    // A crash during start-up fails the start; once both are ready, a crash restarts that app
    // with back-off and the other keeps serving (scripts/launcher/supervisor.ts).
    const supervise = (name: string, script: string, url: string): Supervised =>
      new Supervised(name, resolve(__dirname, script), childEnv, {
        say,
        onExit: (code, signal) => {
          if (stopping) return;
          say(`${name} exited unexpectedly (${exitReason(code, signal)})`);
          void shutdown(`${name} exited`, code === 2 ? 2 : 1);
        },
        onRestarted: (n, alive) =>
          waitForHttp200(`${url}/v2/health/ready`, Date.now() + cfg.readyTimeoutMs, alive).then(
            () => say(`${name} ready again (restart ${n})`),
            (e: unknown) => {
              if (!stopping) say(`${name} not ready after restart ${n}: ${(e as Error).message}`);
            },
          ),
      });
    children.push(supervise('gateway', '../apps/gateway/src/main.js', gatewayUrl));
    children.push(supervise('batch', '../apps/batch/src/main.js', batchUrl));
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void shutdown(sig, 0));

    const deadline = Date.now() + cfg.readyTimeoutMs;
    try {
      await Promise.all(children.map((c, i) => waitForHttp200(`${[gatewayUrl, batchUrl][i]}/v2/health/ready`, deadline, () => c.alive())));
      for (const c of children) c.keepAlive();
      if (!stopping) {
        say(`gateway REST  ${gatewayUrl}  (OIP v2: ${gatewayUrl}/v2, metrics: ${gatewayUrl}/metrics, admin: ${gatewayUrl}/admin)`);
        say(`gateway gRPC  ${host(gatewayCfg.host)}:${gatewayCfg.grpcPort}`);
        say(`batch API     ${batchUrl}  (${batchUrl}/v1/batches)`);
        say('ready — Ctrl-C to stop');
      }
    } catch (e) {
      if (!stopping) {
        say(`start failed: ${(e as Error).message}`);
        await shutdown('start failed', 1);
      }
    }
    await done;
    return exitCode;
  } catch (e) {
    await shutdown('error', 1);
    throw e;
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`[tandem] ${redactUrls(e instanceof StartError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e))}\n`);
    process.exit(1);
  },
);
