import type { Proc } from './chaos-proc';
import type { PrivateStores } from './private-stores';
import { workerOf, type QueueWatch } from './queue-watch';

/** What a fault needs to land on a running batch and to prove what it hit. */
export interface FaultContext {
  watch: QueueWatch;
  stores: PrivateStores;
  log: (s: string) => void;
  /** The batch's state and pending chunks as Postgres has them now. */
  progress(): Promise<{ state: string; pending: number }>;
  /** Chunks the reconcilers said they re-enqueued (from their logs) since `t`. */
  requeuedSince(t: number): number;
}

export interface KillEvidence {
  pendingBefore: number;
  /** Jobs the killed worker held (active under its lock) at the kill. */
  held: string[];
  /** Every held job's lock expired (stalled) and another worker ran it again. */
  rerun: boolean;
}

export interface FlushEvidence {
  pendingBefore: number;
  /** Jobs in the queue store (waiting, prioritized, delayed, active) just before and after FLUSHALL. */
  queuedBefore: number;
  queuedAfter: number;
  /** Chunks the reconciler put back (its log) and the `added` events that followed the flush. */
  requeued: number;
  addedAfter: number;
}

export interface RestartEvidence {
  pendingBefore: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(fn: () => T | null | Promise<T | null>, timeoutMs: number): Promise<T | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > deadline) return null;
    await sleep(100);
  }
}

/** A fault that would land on a finished (or nearly finished) batch proves nothing: refuse it. */
async function mustBeRunning(ctx: FaultContext, fault: string, minPending: number): Promise<number> {
  const p = await ctx.progress();
  if (p.state !== 'running' || p.pending < minPending) {
    throw new Error(`${fault} would not land on a running batch (state ${p.state}, ${p.pending} chunks pending): make the batch longer`);
  }
  return p.pending;
}

/**
 * SIGKILLs `victim` while the batch runs, starts its replacement, and records which jobs the
 * victim held and whether each one stalled and ran again elsewhere.
 */
export async function killWorker(ctx: FaultContext, victim: Proc, replace: () => Promise<Proc>, workers: number): Promise<KillEvidence> {
  const pendingBefore = await mustBeRunning(ctx, 'worker SIGKILL', 8);
  // A kill must land on a worker that holds a chunk. Right after a fault (a FLUSHALL, a
  // replacement still starting) some workers sit idle until the reconciler re-enqueues: wait
  // until every worker holds a job, so whichever is the victim has something to lose.
  await until(async () => {
    const active = await ctx.watch.poll();
    return new Set([...active.values()].map(workerOf)).size >= workers ? true : null;
  }, 20_000);
  const killedAt = Date.now();
  await victim.kill('SIGKILL');
  // What the victim held when it died: its locks stay in Redis until they expire, so a read right
  // after the kill sees exactly them (a read before it could miss a job taken meanwhile).
  const before = await ctx.watch.poll();
  const fresh = await replace();
  // Held = active at the kill under the one worker whose locks then expired (see heldByKilled).
  const held =
    (await until(() => {
      const h = ctx.watch.heldByKilled(before, killedAt, 500);
      return h.length > 0 ? h : null;
    }, 20_000)) ?? [];
  const rerun = held.length > 0 && (await until(() => (ctx.watch.rerunAfterStall(held, killedAt) ? true : null), 30_000)) === true;
  await fresh.waitFor(/listening/, 60_000);
  ctx.log(`SIGKILL worker holding ${held.length} job(s) (${pendingBefore} chunks pending); ${rerun ? 'each stalled and ran again' : 'NOT re-run'}`);
  return { pendingBefore, held, rerun };
}

/** FLUSHALL while jobs are queued; records what was lost and what the reconciler put back. */
export async function flushRedis(ctx: FaultContext): Promise<FlushEvidence> {
  const pendingBefore = await mustBeRunning(ctx, 'Redis FLUSHALL', 4);
  const queuedBefore = await ctx.watch.queued();
  const flushedAt = Date.now();
  await ctx.stores.flushAll();
  const queuedAfter = await ctx.watch.queued();
  const requeued = (await until(() => (ctx.requeuedSince(flushedAt) > 0 ? ctx.requeuedSince(flushedAt) : null), 30_000)) ?? 0;
  await ctx.watch.poll();
  const addedAfter = ctx.watch.events.filter((e) => e.at >= flushedAt && e.event === 'added').length;
  ctx.log(`FLUSHALL on Redis: ${queuedBefore} jobs queued before, ${queuedAfter} after; the reconciler re-enqueued ${requeued}`);
  return { pendingBefore, queuedBefore, queuedAfter, requeued, addedAfter };
}

/** Stops Postgres for `downMs` while the batch runs. */
export async function restartPostgres(ctx: FaultContext, downMs: number, onDown: (down: boolean) => void): Promise<RestartEvidence> {
  const pendingBefore = await mustBeRunning(ctx, 'Postgres restart', 2);
  onDown(true);
  ctx.log(`restarting Postgres (${pendingBefore} chunks pending)`);
  try {
    await ctx.stores.restartPostgres(downMs);
  } finally {
    onDown(false);
  }
  ctx.log('Postgres back');
  return { pendingBefore };
}
