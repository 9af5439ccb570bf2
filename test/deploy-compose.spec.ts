import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadBatchConfig } from '../apps/batch/src/config/batch.config';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';

const ROOT = resolve(__dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'tandem-compose-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Service {
  environment?: Record<string, string>;
  command?: string[];
  secrets?: unknown;
  cpu_shares?: number;
}
interface Rendered {
  services: Record<string, Service>;
}

let tool: { cmd: string; args: string[]; json: boolean } | undefined;

/** Compose v2 (`docker compose`, JSON out) if it runs here, else v1 (`docker-compose`, YAML out). */
function composeTool(): { cmd: string; args: string[]; json: boolean } {
  tool ??= findComposeTool();
  return tool;
}

function findComposeTool(): { cmd: string; args: string[]; json: boolean } {
  const clean = { PATH: process.env.PATH ?? '' };
  if (spawnSync('docker', ['compose', 'version'], { env: clean }).status === 0) return { cmd: 'docker', args: ['compose'], json: true };
  if (spawnSync('docker-compose', ['version'], { env: clean }).status === 0) return { cmd: 'docker-compose', args: [], json: false };
  // No skip: the acceptance is a working `docker-compose config`; .ci/run installs Debian's docker-compose.
  throw new Error('neither `docker compose` nor `docker-compose` runs here: apt-get install -y docker-compose (.ci/run does)');
}

/** Renders docker-compose.yml with exactly this env file (no shell variables leak in). */
function render(envFile: Record<string, string>): { status: number; stdout: string; stderr: string } {
  const path = join(dir, `env-${Math.random().toString(36).slice(2)}`);
  writeFileSync(
    path,
    Object.entries(envFile)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n') + '\n',
  );
  const t = composeTool();
  const args = [...t.args, '--env-file', path, '-f', join(ROOT, 'docker-compose.yml'), 'config', ...(t.json ? ['--format', 'json'] : [])];
  const r = spawnSync(t.cmd, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: dir }, encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function parse(out: string, json: boolean): Rendered {
  if (json) return JSON.parse(out) as Rendered;
  // Compose v1 prints YAML only; python3-yaml comes with Debian's docker-compose.
  const r = spawnSync('python3', ['-c', 'import json,sys,yaml; print(json.dumps(yaml.safe_load(sys.stdin)))'], { input: out, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot convert compose YAML: ${r.stderr}`);
  return JSON.parse(r.stdout) as Rendered;
}

function renderOk(envFile: Record<string, string>): Rendered {
  const r = render(envFile);
  expect(r.status, r.stderr).toBe(0);
  return parse(r.stdout, composeTool().json);
}

/** .env.example with its blanks filled, as a user would. */
function exampleEnv(fill: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(join(ROOT, '.env.example'), 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return { ...out, ...fill };
}

const KEY = 'compose-admin-key-0123456789abcdef';
const APPS = ['gateway', 'batch', 'worker'] as const;

describe('docker-compose.yml as shipped', () => {
  it('renders with the example env: every app carries the admin key, the batch URL and one shared node name', () => {
    const env = exampleEnv({ TANDEM_ADMIN_KEY: KEY, POSTGRES_PASSWORD: 'pg-secret', REDIS_PASSWORD: 'redis-secret' });
    expect(env.TANDEM_NODE_NAME).toBe('node-1');
    const s = renderOk(env).services;
    expect(Object.keys(s).sort()).toEqual(['batch', 'gateway', 'migrate', 'postgres', 'redis', 'worker']);
    for (const app of APPS) {
      const e = s[app]!.environment!;
      expect(e.TANDEM_ADMIN_KEY, app).toBe(KEY);
      expect(e.SCHEDULER_NODE_NAME, app).toBe('node-1');
      expect(e.DATABASE_URL, app).toBe('postgres://postgres:pg-secret@postgres:5432/tandem');
      expect(e.REDIS_URL, app).toBe('redis://:redis-secret@redis:6379');
    }
    expect(s.gateway!.environment!.BATCH_API_URL).toBe('http://batch:8100');
    expect(s.batch!.environment!).toMatchObject({ BATCH_PORT: '8100', BATCH_ROLE: 'api' });
    expect(s.worker!.environment!.BATCH_ROLE).toBe('worker');
    // Online first across containers: the kernel weighs cgroups before nice/SCHED_IDLE count.
    expect(s.worker!.cpu_shares).toBe(2);
    expect(s.gateway!.cpu_shares).toBeUndefined();
    expect(s.postgres!.environment!.POSTGRES_PASSWORD).toBe('pg-secret');
    expect(s.postgres!.environment!.POSTGRES_HOST_AUTH_METHOD).toBeUndefined();
    expect(s.redis!.command).toEqual(['redis-server', '--save', '', '--appendonly', 'no', '--requirepass', 'redis-secret']);

    // The apps' own config loaders accept what compose renders, and read it as intended.
    const gw = loadGatewayConfig(s.gateway!.environment!);
    expect(gw.batchApiUrl).toBe('http://batch:8100');
    expect(gw.auth).toMatchObject({ enabled: true, bootstrapAdminKey: KEY });
    const worker = loadBatchConfig(s.worker!.environment!);
    const api = loadBatchConfig(s.batch!.environment!);
    expect(new Set([gw.scheduler.nodeName, worker.scheduler.nodeName, api.scheduler.nodeName])).toEqual(new Set(['node-1']));
    expect(worker.jobs.role).toBe('worker');
  });

  it("a second host gets its own node name and points at the first host's Postgres, Redis and batch API", () => {
    const env = exampleEnv({
      TANDEM_ADMIN_KEY: KEY,
      TANDEM_NODE_NAME: 'node-2',
      POSTGRES_PASSWORD: 'pg-secret',
      REDIS_PASSWORD: 'redis-secret',
      POSTGRES_HOST: '10.0.0.10',
      REDIS_HOST: '10.0.0.10',
      BATCH_API_URL: 'http://10.0.0.10:8100',
    });
    const s = renderOk(env).services;
    for (const app of ['gateway', 'worker'] as const) {
      const e = s[app]!.environment!;
      expect(e.SCHEDULER_NODE_NAME).toBe('node-2');
      expect(e.DATABASE_URL).toBe('postgres://postgres:pg-secret@10.0.0.10:5432/tandem');
      expect(e.REDIS_URL).toBe('redis://:redis-secret@10.0.0.10:6379');
    }
    expect(s.gateway!.environment!.BATCH_API_URL).toBe('http://10.0.0.10:8100');
  });

  it('refuses to render without an admin key, a node name or the store passwords, naming what is missing', () => {
    const full = exampleEnv({ TANDEM_ADMIN_KEY: KEY, POSTGRES_PASSWORD: 'pg', REDIS_PASSWORD: 'r' });
    for (const [name, message] of [
      ['TANDEM_ADMIN_KEY', 'set TANDEM_ADMIN_KEY in .env'],
      ['TANDEM_NODE_NAME', 'set TANDEM_NODE_NAME in .env'],
      ['POSTGRES_PASSWORD', 'set POSTGRES_PASSWORD in .env'],
      ['REDIS_PASSWORD', 'set REDIS_PASSWORD in .env'],
    ] as const) {
      const r = render({ ...full, [name]: '' });
      expect(r.status, name).not.toBe(0);
      expect(r.stderr, name).toContain(message);
    }
  });
});
