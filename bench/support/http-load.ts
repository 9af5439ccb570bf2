import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import { Client } from 'pg';
import { runMigrations } from '@tandem/persistence';

/** Load generation and server plumbing shared by the benchmarks (bench:online, bench:hybrid). */

const CLS_ITEM = 3 * 48 * 192;
const say = (s: string): void => void process.stdout.write(`${s}\n`);

export const freePort = (): Promise<number> =>
  new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? res(a.port) : rej(new Error('no port'))));
    });
  });

export interface Target {
  port: number;
  path: string;
  body: Buffer;
  headers: Record<string, string>;
}

/**
 * A minimal HTTP/1.1 keep-alive connection (like wrk): the request bytes are serialized once
 * and written as-is; the response is parsed only for status and Content-Length. node:http's
 * client costs more CPU per request than the gateway's own overhead on this 2-core box.
 */
class Conn {
  private sock: Socket;
  private buf: Buffer = Buffer.alloc(0);
  private waiter: ((status: number) => void) | undefined;
  private failer: ((e: Error) => void) | undefined;

  constructor(port: number) {
    this.sock = connect({ host: '127.0.0.1', port, noDelay: true });
    this.sock.on('data', (d: Buffer) => this.onData(d));
    this.sock.on('error', (e) => this.failer?.(e));
    this.sock.on('close', () => this.failer?.(new Error('connection closed')));
  }

  send(raw: Buffer): Promise<number> {
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.failer = reject;
      this.sock.write(raw);
    });
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.buf.toString('latin1', 0, end);
    const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (this.buf.length < end + 4 + len) return;
    this.buf = this.buf.subarray(end + 4 + len);
    const status = Number(head.slice(9, 12));
    const w = this.waiter;
    this.waiter = undefined;
    this.failer = undefined;
    w?.(status);
  }

  close(): void {
    this.sock.destroy();
  }
}

function rawRequest(t: Target): Buffer {
  const head = Object.entries({ ...t.headers, 'content-length': String(t.body.length) })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return Buffer.concat([Buffer.from(`POST ${t.path} HTTP/1.1\r\nhost: 127.0.0.1:${t.port}\r\n${head}\r\n`, 'latin1'), t.body]);
}

export interface LoadResult {
  ok: number;
  errors: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
}

export function summarize(lat: number[], ok: number, errors: number, seconds: number): LoadResult {
  lat.sort((a, b) => a - b);
  const q = (p: number): number => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]! : NaN);
  return { ok, errors, seconds, rps: ok / seconds, p50: q(0.5), p99: q(0.99) };
}

/** A closed loop of `concurrency` workers, each awaiting `call(worker)` back to back for `seconds`; true = success (its latency counted). */
export async function closedLoopOf(concurrency: number, seconds: number, call: (worker: number) => Promise<boolean>): Promise<LoadResult> {
  const lat: number[] = [];
  let ok = 0;
  let errors = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, i) => {
      while (performance.now() < end) {
        const t0 = performance.now();
        if (await call(i)) {
          ok++;
          lat.push(performance.now() - t0);
        } else errors++;
      }
    }),
  );
  return summarize(lat, ok, errors, (performance.now() - start) / 1000);
}

/** `backoffOn503Ms`: a client that got 503 waits this long before its next request (as Retry-After asks); default none. */
export async function closedLoop(t: Target, concurrency: number, seconds: number, opts: { backoffOn503Ms?: number } = {}): Promise<LoadResult> {
  const raw = rawRequest(t);
  const conns = Array.from({ length: concurrency }, () => new Conn(t.port));
  const end = performance.now() + seconds * 1000;
  const r = await closedLoopOf(concurrency, seconds, async (i) => {
    const status = await conns[i]!.send(raw).catch(() => {
      conns[i]!.close();
      conns[i] = new Conn(t.port);
      return 0;
    });
    if (status === 200) return true;
    if (status === 503 && opts.backoffOn503Ms) await new Promise((ok) => setTimeout(ok, Math.min(opts.backoffOn503Ms!, Math.max(0, end - performance.now()))));
    return false;
  });
  for (const c of conns) c.close();
  return r;
}

/**
 * Open loop: requests start on a fixed schedule; latency counts from the scheduled time.
 * `record` sees each answer (scheduled time, latency ms or null when it failed), for traces.
 */
export async function openLoop(t: Target, rate: number, seconds: number, record?: (scheduledAt: number, ms: number | null) => void): Promise<LoadResult> {
  const raw = rawRequest(t);
  const idle: Conn[] = [];
  const all: Conn[] = [];
  const post = async (): Promise<number> => {
    let c = idle.pop();
    if (!c) {
      c = new Conn(t.port);
      all.push(c);
    }
    const status = await c.send(raw);
    idle.push(c);
    return status;
  };
  const lat: number[] = [];
  let ok = 0;
  let errors = 0;
  const statuses: Record<string, number> = {};
  const total = Math.floor(rate * seconds);
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  let sent = 0;
  while (sent < total) {
    const now = performance.now();
    const due = Math.min(total, Math.floor(((now - start) / 1000) * rate) + 1);
    for (; sent < due; sent++) {
      const scheduled = start + (sent / rate) * 1000;
      inflight.push(
        post().then(
          (s) => {
            if (s === 200) {
              ok++;
              lat.push(performance.now() - scheduled);
              record?.(scheduled, performance.now() - scheduled);
            } else {
              record?.(scheduled, null);
              errors++;
              statuses[s] = (statuses[s] ?? 0) + 1;
            }
          },
          (e: Error) => {
            errors++;
            statuses[e.message] = (statuses[e.message] ?? 0) + 1;
          },
        ),
      );
    }
    await new Promise((r) => setTimeout(r, Math.max(0, start + (sent / rate) * 1000 - performance.now())));
  }
  await Promise.all(inflight);
  for (const c of all) c.close();
  if (errors > 0) say(`open loop errors: ${JSON.stringify(statuses)}; connections opened: ${all.length}`);
  return summarize(lat, ok, errors, seconds);
}

// ---------- servers ----------
export async function spawnServer(args: string[], env: NodeJS.ProcessEnv, readyUrl?: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((res, rej) => {
    const deadline = Date.now() + 60_000;
    child.once('exit', (c) => rej(new Error(`server exited with ${c}`)));
    child.stdout!.on('data', (d: Buffer) => {
      if (!readyUrl && d.toString().includes('ready')) res();
    });
    if (readyUrl) {
      const poll = (): void => {
        fetch(readyUrl)
          .then((r) => (r.ok ? res() : Promise.reject(new Error(String(r.status)))))
          .catch(() => (Date.now() > deadline ? rej(new Error(`not ready: ${readyUrl}`)) : setTimeout(poll, 200)));
      };
      poll();
    }
  });
  child.stdout!.resume();
  return child;
}

/** `key`: an API key sent as a bearer token (the shipped configuration has authentication on). */
export function clsBinaryTarget(port: number, key?: string): Target {
  const x = Float32Array.from({ length: CLS_ITEM }, (_, i) => ((i * 7919) % 1000) / 1000);
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'x', shape: [1, 3, 48, 192], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }],
      outputs: [{ name: 'softmax_0.tmp_0', parameters: { binary_data: true } }],
    }),
  );
  return {
    port,
    path: '/v2/models/ppocr_cls/infer',
    body: Buffer.concat([header, Buffer.from(x.buffer)]),
    headers: {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(header.length),
      ...(key ? { authorization: `Bearer ${key}` } : {}),
    },
  };
}

/** A migrated scratch database for benchmark children (DATABASE_URL wins when set). */
export async function benchDatabase(name: string, explicit?: string): Promise<string> {
  if (explicit) return explicit;
  const admin = new Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = `postgres://postgres@127.0.0.1:5432/${name}`;
  await runMigrations(url);
  return url;
}
