import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { EmbeddedPostgres } from '../launcher/embedded-postgres';

export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => ok(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/**
 * A Postgres and a Redis of the chaos run's own (embedded-postgres binaries, `redis-server`), so
 * restarting one or FLUSHALL never touches the machine's shared servers or other tests.
 */
export class PrivateStores {
  readonly dir = mkdtempSync(join(tmpdir(), 'tandem-chaos-'));
  pg!: EmbeddedPostgres;
  pgPort = 0;
  redisPort = 0;
  private redis?: ChildProcess;

  get databaseUrl(): string {
    return this.pg.url;
  }
  get redisUrl(): string {
    return `redis://127.0.0.1:${this.redisPort}`;
  }

  async start(log: (s: string) => void): Promise<void> {
    chmodSync(this.dir, 0o755); // as root, Postgres runs as the postgres user, which must reach it
    this.pgPort = await freePort();
    this.pg = new EmbeddedPostgres(join(this.dir, 'pg'), this.pgPort, log);
    await this.pg.start();
    this.redisPort = await freePort();
    await this.startRedis();
  }

  private async startRedis(): Promise<void> {
    const proc = spawn('redis-server', ['--port', String(this.redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const failed = new Promise<never>((_, fail) => proc.once('error', (e) => fail(new Error(`cannot run redis-server: ${e.message}`))));
    this.redis = proc;
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = new Redis(this.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      r.on('error', () => undefined);
      const ok = await Promise.race([
        r
          .connect()
          .then(() => r.ping())
          .then(
            () => true,
            () => false,
          ),
        failed,
      ]);
      r.disconnect();
      if (ok) return;
      if (Date.now() > deadline) throw new Error('private redis-server did not answer');
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  async flushAll(): Promise<void> {
    const r = new Redis(this.redisUrl, { maxRetriesPerRequest: 1 });
    await r.flushall();
    r.disconnect();
  }

  async restartPostgres(downMs: number): Promise<void> {
    await this.pg.stop();
    await new Promise((r) => setTimeout(r, downMs));
    await this.pg.start();
  }

  async stop(): Promise<void> {
    this.redis?.kill('SIGKILL');
    await this.pg?.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
