import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, pidAlive, spawnNode } from './support/processes';

// `npm test` builds first; these tests drive the real compiled launcher, as `npm start` does.
const START = resolve(process.cwd(), 'dist/scripts/start.js');

function descendants(pid: number): number[] {
  try {
    const out = execFileSync('ps', ['-e', '-o', 'pid=,ppid=']).toString();
    const rows = out
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/).map(Number));
    const found: number[] = [];
    const walk = (p: number): void => {
      for (const [child, parent] of rows) if (parent === p) (found.push(child), walk(child));
    };
    walk(pid);
    return found;
  } catch {
    return [];
  }
}

describe('npm start launcher', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('with nothing on the Postgres/Redis ports: embedded Postgres + BullMQ on Postgres, both apps ready, clean SIGTERM', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tandem-embedded-'));
    chmodSync(dataDir, 0o755); // as root, Postgres runs as the postgres user, which must reach it
    dirs.push(dataDir);
    const [deadPg, deadRedis, pgPort, gw, grpc, batch] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
    const launcher = spawnNode(START, {
      LOCAL_DATABASE_URL: `postgres://postgres@127.0.0.1:${deadPg}/tandem`,
      LOCAL_REDIS_URL: `redis://127.0.0.1:${deadRedis}`,
      TANDEM_DATA_DIR: dataDir,
      EMBEDDED_PG_PORT: String(pgPort),
      GATEWAY_PORT: String(gw),
      GATEWAY_GRPC_PORT: String(grpc),
      BATCH_PORT: String(batch),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
    });
    try {
      await launcher.waitFor(/ready — Ctrl-C to stop/, 60_000);
      expect(launcher.output()).toMatch(/database: EMBEDDED Postgres/);
      expect(launcher.output()).toMatch(/queue: +BullMQ on its PostgreSQL backend/);
      // Auth is on by default: the first start creates an admin key and prints it once.
      const key = /created the first admin API key — shown only now, store it: (tdm_\S+)/.exec(launcher.output())?.[1];
      expect(key).toBeDefined();
      const who = await fetch(`http://127.0.0.1:${gw}/admin/api/whoami`, { headers: { authorization: `Bearer ${key}` } });
      expect(who.status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${gw}/admin/api/whoami`)).status).toBe(401);
      for (const port of [gw, batch]) {
        const res = await fetch(`http://127.0.0.1:${port}/v2/health/ready`);
        expect(res.status).toBe(200);
        expect(((await res.json()) as { checks: Record<string, string> }).checks).toMatchObject({ postgres: 'ok', 'queue(postgres)': 'ok' });
      }
      const pids = descendants(launcher.proc.pid!);
      // gateway, batch and postgres (plus postgres' own workers)
      expect(pids.length).toBeGreaterThanOrEqual(3);
      launcher.proc.kill('SIGTERM');
      const { code } = await launcher.exited;
      expect(code).toBe(0);
      expect(launcher.output()).toMatch(/\[tandem\] stopped/);
      await new Promise((r) => setTimeout(r, 200));
      expect(pids.filter(pidAlive)).toEqual([]);
    } finally {
      if (launcher.proc.exitCode === null) launcher.proc.kill('SIGKILL');
    }
  });

  it('a bad env value exits non-zero naming the variable, before starting anything', async () => {
    const launcher = spawnNode(START, { GATEWAY_PORT: 'abc', LOG_LEVEL: 'warn' });
    const { code } = await launcher.exited;
    expect(code).toBe(2);
    expect(launcher.output()).toMatch(/GATEWAY_PORT: .*\(got "abc"\)/);
    expect(launcher.output()).not.toMatch(/database:/);
  });

  it('an explicit DATABASE_URL that does not answer fails loudly and never falls back', async () => {
    const dead = await freePort();
    const launcher = spawnNode(START, { DATABASE_URL: `postgres://postgres@127.0.0.1:${dead}/tandem`, LOG_LEVEL: 'warn' });
    const { code } = await launcher.exited;
    expect(code).toBe(1);
    expect(launcher.output()).toMatch(/DATABASE_URL is set but Postgres does not answer/);
    expect(launcher.output()).not.toMatch(/EMBEDDED/);
  });
});
