import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempModelRepo, type TempRepo } from './support/model-repo';
import { freePort, pidAlive, spawnNode, type Spawned } from './support/processes';
import { deleteQueueKeys } from './support/batch-harness';
import { createTestDatabase, testQueuePrefix, TEST_REDIS_URL, type TestDatabase } from './support/test-env';

const ROOT = resolve(__dirname, '..');

/** Pids of every descendant of `pid` with their command lines. */
function descendants(pid: number): { pid: number; cmd: string }[] {
  const rows = execFileSync('ps', ['-e', '-o', 'pid=,ppid='])
    .toString()
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number));
  const found: number[] = [];
  const walk = (p: number): void => {
    for (const [child, parent] of rows) if (parent === p) (found.push(child!), walk(child!));
  };
  walk(pid);
  return found.map((p) => {
    try {
      return { pid: p, cmd: readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ') };
    } catch {
      return { pid: p, cmd: '' };
    }
  });
}

const appPid = (launcher: number, app: 'gateway' | 'batch'): number | undefined =>
  descendants(launcher).find((d) => d.cmd.includes(`apps/${app}/src/main.js`))?.pid;

describe('launcher keeps the system up when an app crashes', () => {
  let db: TestDatabase;
  let repo: TempRepo;
  let bundle: string;
  let prefix: string;

  beforeAll(() => {
    // A private build of the launcher, so other engineers' `npm run build` into dist/ cannot race it.
    bundle = join('test-artifacts', `launcher-${randomBytes(4).toString('hex')}`);
    execFileSync(
      join(ROOT, 'node_modules', '.bin', 'swc'),
      ['apps', 'libs', 'migrations', 'scripts', '-d', bundle, '--copy-files', '--quiet', '--ignore', '**/*.spec.ts'],
      {
        cwd: ROOT,
        stdio: 'pipe',
      },
    );
    repo = tempModelRepo({ scorer: { from: 'scorer', config: { max_batch_size: 8, inputs: [{ name: 'x', shape: [-1, 1] }] } } });
    prefix = testQueuePrefix();
  });

  afterAll(async () => {
    rmSync(join(ROOT, bundle), { recursive: true, force: true });
    repo?.remove();
    await db?.drop();
    if (prefix) await deleteQueueKeys(prefix);
  });

  it('kill -9 of the batch app: restarted with back-off (0.5 s, then 1 s), ready again, the gateway answers throughout; SIGTERM still exits 0', async () => {
    db = await createTestDatabase();
    const [gw, grpc, batch] = await Promise.all([freePort(), freePort(), freePort()]);
    let launcher: Spawned | undefined;
    let polling = true;
    try {
      launcher = spawnNode(
        join(ROOT, bundle, 'scripts', 'start.js'),
        {
          DATABASE_URL: db.url,
          REDIS_URL: TEST_REDIS_URL,
          QUEUE_PREFIX: prefix,
          MODEL_REPOSITORY: repo.dir,
          TANDEM_AUTH: 'off',
          GATEWAY_PORT: String(gw),
          GATEWAY_GRPC_PORT: String(grpc),
          BATCH_PORT: String(batch),
          HOST: '127.0.0.1',
          LOG_LEVEL: 'warn',
        },
        ROOT,
      );
      const l = launcher;
      await l.waitFor(/ready — Ctrl-C to stop/, 90_000);
      const gatewayPid = appPid(l.proc.pid!, 'gateway');
      const firstBatch = appPid(l.proc.pid!, 'batch');
      expect(gatewayPid).toBeDefined();
      expect(firstBatch).toBeDefined();

      // The gateway is asked every 50 ms while the batch app dies and comes back.
      const gatewayAnswers: number[] = [];
      const poller = (async () => {
        while (polling) {
          gatewayAnswers.push(
            await fetch(`http://127.0.0.1:${gw}/v2/health/ready`).then(
              (r) => r.status,
              () => 0,
            ),
          );
          await new Promise((r) => setTimeout(r, 50));
        }
      })();

      process.kill(firstBatch!, 'SIGKILL');
      await l.waitFor(/batch exited with signal SIGKILL; restarting in 0\.5 s \(restart 1\)/, 10_000);
      await l.waitFor(/batch ready again \(restart 1\)/, 60_000);
      const secondBatch = appPid(l.proc.pid!, 'batch');
      expect(secondBatch).toBeDefined();
      expect(secondBatch).not.toBe(firstBatch);
      expect((await fetch(`http://127.0.0.1:${batch}/v2/health/ready`)).status).toBe(200);

      // A second crash soon after waits twice as long.
      process.kill(secondBatch!, 'SIGKILL');
      await l.waitFor(/batch exited with signal SIGKILL; restarting in 1 s \(restart 2\)/, 10_000);
      await l.waitFor(/batch ready again \(restart 2\)/, 60_000);
      expect((await fetch(`http://127.0.0.1:${batch}/v2/health/ready`)).status).toBe(200);

      polling = false;
      await poller;
      expect(gatewayAnswers.length).toBeGreaterThan(10);
      expect(gatewayAnswers.filter((s) => s !== 200)).toEqual([]);
      expect(appPid(l.proc.pid!, 'gateway')).toBe(gatewayPid);
      expect(l.output()).not.toMatch(/stopping/);

      const pids = descendants(l.proc.pid!).map((d) => d.pid);
      l.proc.kill('SIGTERM');
      const { code } = await l.exited;
      expect(code).toBe(0);
      expect(l.output()).toMatch(/\[tandem\] stopped/);
      await new Promise((r) => setTimeout(r, 200));
      expect(pids.filter(pidAlive)).toEqual([]);
    } finally {
      polling = false;
      if (launcher && launcher.proc.exitCode === null) launcher.proc.kill('SIGKILL');
    }
  });
});
