import { mkdirSync, watch } from 'node:fs';
import { setPriority } from 'node:os';
import { basename, dirname } from 'node:path';
import { parentPort } from 'node:worker_threads';
import type { Client as PgClient } from 'pg';

/**
 * The revocation fast path's thread (see RevocationFastPath): its own LISTEN connection and an
 * event loop that does nothing else, so a revoked unit's process is stopped within a
 * millisecond or two of the NOTIFY, whatever the worker's main thread is busy with.
 */
export interface FastPathThreadData {
  url: string;
  channel: string;
  /** This worker's node: online demand announced for it stops its borrowed units. */
  node: string;
  /** The node-local hint's file (LocalDemandHint), watched besides the NOTIFY; null: NOTIFY only. */
  hintFile: string | null;
  pgPath: string;
  /** Per unit slot: the pid of the process running a preemptible run on it, 0 when none. */
  pids: SharedArrayBuffer;
  /** Per unit slot, the last stop: the revocation's instant (the NOTIFY's `at`), when this thread got it, when kill() returned. */
  stops: SharedArrayBuffer;
}

export type FromThread =
  | { type: 'ready' }
  | { type: 'error'; message: string }
  | { type: 'stopped'; slot: number; pid: number; notice: Record<string, unknown>; receivedAtMs: number; stoppedAtMs: number }
  | { type: 'held'; slot: number; pid: number; groupId: string; receivedAtMs: number; stoppedAtMs: number }
  | { type: 'hint' };

type ToThread = { type: 'watch'; id: string; slot: number; borrowed: boolean } | { type: 'unwatch'; id: string } | { type: 'close' };

/** The file and the NOTIFY both carry one hint; a gateway sends one per idle → busy transition. */
const HINT_DEDUP_MS = 200;

export default function revocationFastPath(data: FastPathThreadData): void {
  const port = parentPort!;
  // The worker runs niced (BATCH_CPU_NICE), and so would this thread, created from it; at nice 10
  // it waited for online's own threads (notice → stop up to 19 ms). Linux's setpriority with pid 0
  // is this thread only; raising priority needs CAP_SYS_NICE (root here; a container drops it):
  // without it the thread keeps the worker's nice.
  try {
    setPriority(0);
  } catch {
    // not permitted
  }
  const { Client } = require(data.pgPath) as typeof import('pg');
  const pids = new Int32Array(data.pids);
  const stops = new Float64Array(data.stops);
  const watched = new Map<string, { slot: number; borrowed: boolean }>();
  let client: PgClient | null = null;
  let closed = false;
  let announced = false;

  const post = (m: FromThread): void => port.postMessage(m);
  /** SIGSTOP to the process registered on `slot`; its pid, or 0 when none (or gone). */
  const stop = (slot: number): number => {
    const pid = Atomics.load(pids, slot);
    if (pid <= 0) return 0;
    try {
      process.kill(pid, 'SIGSTOP');
      return pid;
    } catch {
      return 0; // the process is gone
    }
  };
  let lastHintAt = Number.NEGATIVE_INFINITY;
  /**
   * Online demand on this node (the local file or the NOTIFY, whichever comes first; the other
   * copy is dropped): every borrowed unit stops now, and the main thread continues any that the
   * revocation does not reach soon after.
   */
  const onHint = (receivedAtMs: number): void => {
    if (receivedAtMs - lastHintAt < HINT_DEDUP_MS) return;
    lastHintAt = receivedAtMs;
    for (const [groupId, w] of watched) {
      const pid = w.borrowed ? stop(w.slot) : 0;
      if (pid > 0) post({ type: 'held', slot: w.slot, pid, groupId, receivedAtMs, stoppedAtMs: performance.timeOrigin + performance.now() });
    }
    post({ type: 'hint' }); // and no new run on a borrowed unit for now (one may be between runs)
  };
  if (data.hintFile) {
    const file = basename(data.hintFile);
    try {
      mkdirSync(dirname(data.hintFile), { recursive: true });
      const w = watch(dirname(data.hintFile), (_event, name) => {
        if (name === file) onHint(performance.timeOrigin + performance.now());
      });
      w.on('error', () => w.close()); // the directory went away: the NOTIFY still carries hints
      w.unref();
    } catch {
      // no such directory and none can be made here: the NOTIFY carries hints
    }
  }

  const onNotify = (payload: string): void => {
    const receivedAtMs = performance.timeOrigin + performance.now();
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(payload) as Record<string, unknown>;
    } catch {
      return;
    }
    if (m.e === 'online-demand' && m.node === data.node) return onHint(receivedAtMs);
    if (m.e !== 'revoke') return;
    const slot = watched.get(String(m.groupId))?.slot; // a unit's lease is one allocation group
    if (slot === undefined) return;
    const pid = stop(slot);
    if (pid === 0) return;
    const stoppedAtMs = performance.timeOrigin + performance.now();
    // For the main thread, which may get to its own copy of the notice before this message.
    stops.set([typeof m.at === 'number' ? m.at : 0, receivedAtMs, stoppedAtMs], 3 * slot);
    post({ type: 'stopped', slot, pid, notice: m, receivedAtMs, stoppedAtMs });
  };

  const connect = async (): Promise<void> => {
    const c = new Client({ connectionString: data.url, application_name: 'tandem-revocation-fast-path' });
    c.on('notification', (n) => {
      if (n.channel === data.channel && n.payload) onNotify(n.payload);
    });
    const retry = (): void => {
      if (closed || client !== c) return;
      client = null;
      setTimeout(() => void connect().catch(retry), 500);
    };
    c.on('error', retry);
    c.on('end', retry);
    client = c;
    await c.connect();
    await c.query(`LISTEN ${data.channel}`);
    if (!announced) post({ type: 'ready' });
    announced = true;
  };

  port.on('message', (m: ToThread) => {
    if (m.type === 'watch') watched.set(m.id, { slot: m.slot, borrowed: m.borrowed });
    else if (m.type === 'unwatch') watched.delete(m.id);
    else {
      closed = true;
      const c = client;
      client = null;
      void (c ? c.end().catch(() => undefined) : Promise.resolve()).then(() => port.close());
    }
  });
  connect().catch((e: unknown) => post({ type: 'error', message: e instanceof Error ? e.message : String(e) }));
}
