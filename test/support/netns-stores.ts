import { execFileSync } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import type { NetnsLab, NsProcess } from './netns';

/** The newest Debian Postgres server installed (/usr/lib/postgresql/<major>/bin). */
function pgBin(): string {
  const majors = readdirSync('/usr/lib/postgresql')
    .filter((d) => /^\d+$/.test(d))
    .sort((a, b) => Number(b) - Number(a));
  if (!majors[0]) throw new Error('no Postgres server under /usr/lib/postgresql (apt-get install postgresql)');
  return join('/usr/lib/postgresql', majors[0], 'bin');
}

/**
 * A Postgres cluster and a redis-server of their own, inside the lab's stores namespace, listening
 * on its bridge address only: the shared servers on 127.0.0.1 are unreachable from the hosts'
 * namespaces, and a fault test must not touch them anyway. Trust auth only from the lab's /24.
 */
export class NetnsStores {
  readonly dir = mkdtempSync(join(tmpdir(), 'tandem-netns-'));
  private pg?: NsProcess;
  private redis?: NsProcess;

  constructor(private readonly lab: NetnsLab) {}

  get databaseUrl(): string {
    return `postgres://postgres@${this.lab.stores.addr}:5432/tandem`;
  }
  get redisUrl(): string {
    return `redis://${this.lab.stores.addr}:6379`;
  }

  async start(): Promise<void> {
    chmodSync(this.dir, 0o755); // postgres (not root) must reach its data dir
    const data = join(this.dir, 'pg');
    mkdirSync(data, { mode: 0o700 });
    const pgUser = { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) };
    chownSync(data, pgUser.uid, pgUser.gid);
    const asPostgres = ['--reuid', 'postgres', '--regid', 'postgres', '--init-groups', '--'];
    execFileSync('setpriv', [...asPostgres, join(pgBin(), 'initdb'), '-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8'], {
      stdio: 'pipe',
    });
    appendFileSync(join(data, 'pg_hba.conf'), `host all all ${this.lab.subnet}.0/24 trust\n`);
    const s = this.lab.stores;
    this.pg = this.lab.run(
      s.ns,
      'setpriv',
      [
        ...asPostgres,
        join(pgBin(), 'postgres'),
        '-D',
        data,
        '-h',
        s.addr,
        '-p',
        '5432',
        '-k',
        data,
        '-c',
        'fsync=off',
        '-c',
        'synchronous_commit=off',
        '-c',
        'full_page_writes=off',
        '-c',
        'max_connections=200',
        '-c',
        'shared_buffers=32MB',
      ],
      {},
    );
    this.redis = this.lab.run(s.ns, 'redis-server', ['--bind', s.addr, '--port', '6379', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], {});
    await Promise.all([this.pg.waitFor(/ready to accept connections/, 30_000), this.redis.waitFor(/Ready to accept connections/, 10_000)]);
    const c = new Client({ connectionString: `postgres://postgres@${s.addr}:5432/postgres` });
    await c.connect();
    try {
      await c.query('CREATE DATABASE tandem');
    } finally {
      await c.end();
    }
  }

  /** The stores' processes die with the lab (NetnsLab.destroy); this removes the data. */
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
