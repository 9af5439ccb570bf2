import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BatchCapacity,
  LocalDemandHint,
  RevocationFastPath,
  type BatchCapacityOptions,
  type FastStop,
  type Scheduler,
  type SchedulerLogger,
} from '@tandem/scheduler';
import { schedulerHarness, waitFor, type Harness } from './support/scheduler-harness';
import { createTestDatabase, type TestDatabase } from './support/test-env';

const OPTS: BatchCapacityOptions = {
  mode: 'ledger',
  deviceKind: 'cpu',
  maxUnits: 1,
  borrowHoldDownMs: 300,
  retryMs: 20,
  idleReleaseMs: 60_000,
  gpuMemoryMiB: 0,
};
/** One-letter process state from /proc (T = stopped). */
/** What UnitProcessHold does with its process: signals it, registers it with the fast path while seated; `events` records the calls. */
function processHold(
  fp: RevocationFastPath,
  child: ChildProcess,
): { events: string[]; preempt: { suspend(): void; resume(): void; seated(s: number | null): void } } {
  const events: string[] = [];
  const sig = (s: NodeJS.Signals): void => void (child.exitCode === null && process.kill(child.pid!, s));
  return {
    events,
    preempt: {
      suspend: () => (events.push('suspend'), sig('SIGSTOP')),
      resume: () => (events.push('resume'), sig('SIGCONT')),
      seated: (s) => void (s !== null && fp.set(s, child.pid!)),
    },
  };
}

const state = (pid: number): string => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0]!;

/**
 * The revocation fast path against the real ledger: a thread with its own LISTEN stops the
 * process registered on a revoked unit's slot, and BatchCapacity counts that stop as the
 * revocation (the main thread's own notice finds it done).
 */
describe('RevocationFastPath (revoked units stopped from a thread of their own)', () => {
  let db: TestDatabase;
  let h: Harness;
  let seq = 0;
  const procs: ChildProcess[] = [];
  const logs: { msg?: string; obj: Record<string, unknown> }[] = [];
  const logger: SchedulerLogger = {
    info: (obj, msg) => logs.push({ msg, obj: obj as Record<string, unknown> }),
    warn: () => undefined,
    error: () => undefined,
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    h = await schedulerHarness(db.url);
  });
  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await h?.close();
    await db?.drop();
  });

  async function setup(): Promise<{ batchSide: Scheduler; onlineSide: Scheduler; cap: BatchCapacity; fp: RevocationFastPath; child: ChildProcess }> {
    const name = `fp${++seq}`;
    const declared = JSON.parse('[{"kind":"cpu","cores":2,"memoryMiB":1024,"name":"Declared CPU"}]') as never[];
    const partition = { online: 1, batch: 0, batchMayBorrow: true };
    const batchSide = await h.make({ nodeName: name, declaredDevices: declared, defaultPartition: partition });
    const onlineSide = await h.make({ nodeName: name, declaredDevices: declared, defaultPartition: partition });
    const fp = await RevocationFastPath.start(db.url, name, logger);
    const cap = new BatchCapacity(OPTS, logger, { allocations: batchSide.allocations, ledger: batchSide.ledger, nodeName: name });
    cap.useFastPath(fp);
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    procs.push(child);
    return { batchSide, onlineSide, cap, fp, child };
  }

  it("stops the registered process on its unit's revocation, and that stop is the worker's revocation", async () => {
    const { batchSide, onlineSide, cap, fp, child } = await setup();
    // The worker's own LISTEN is gone: only the fast path can deliver this revocation.
    await batchSide.listener.stop();
    const events: string[] = [];
    const slot = await cap.acquire({
      mayBorrow: true,
      priority: 50,
      preempt: {
        suspend: () => events.push('suspend'),
        resume: () => events.push('resume'),
        seated: (s) => (s === null ? events.push('unseated') : fp.set(s, child.pid!)),
      },
    });
    expect(slot.borrowed).toBe(true);
    expect(state(child.pid!)).not.toBe('T');
    const lease = await onlineSide.allocations.allocate({ kind: 'online', share: 1, devices: [`${onlineSide.options.nodeName}/cpu`] });
    expect(lease.grant.preempted).toBe(1);
    expect(state(child.pid!)).toBe('T');
    expect(events).toEqual(['suspend', 'unseated']);
    // Counted once; with the thread's own times unless the lease's renewal (which also sees the
    // revocation, without its instant) got to this thread first on a loaded machine.
    expect(cap.revokeReleaseMs()).toHaveLength(1);
    const line = logs.find((l) => l.msg === 'revoked batch unit off the cores');
    if (line?.obj.ledgerRevokeToFreeMs !== undefined) expect(line.obj).toMatchObject({ fastPath: true, hint: false });
    expect(Number(line?.obj.revokeToFreeMs)).toBeGreaterThanOrEqual(0);
    await lease.release();
    await cap.stop();
    await fp.stop();
  });

  it('a registration cleared before the revocation stops nothing; a stale one is reported so the owner can continue the process', async () => {
    const { batchSide, onlineSide, cap, fp, child } = await setup();
    const stops: FastStop[] = [];
    fp.onStopped((s) => stops.push(s));
    cap.onFastStop((pid) => void (child.exitCode === null && process.kill(pid, 'SIGCONT'))); // the owner (UnitPool) knows this process should run
    let seatedAt = -1;
    const slot = await cap.acquire({
      mayBorrow: true,
      priority: 50,
      preempt: { suspend: () => undefined, resume: () => undefined, seated: (s) => s !== null && (seatedAt = s) },
    });
    cap.release(slot); // the run ended: nothing registered on the unit
    const online = await onlineSide.allocations.allocate({ kind: 'online', share: 1, devices: [`${onlineSide.options.nodeName}/cpu`] });
    expect(online.grant.preempted).toBe(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(stops).toEqual([]);
    expect(state(child.pid!)).not.toBe('T');
    await online.release();

    // A stale registration (the run left, the slot still names its process): stopped, then reported.
    await new Promise((r) => setTimeout(r, 400)); // the borrow hold-down
    const again = await cap.acquire({
      mayBorrow: true,
      priority: 50,
      preempt: { suspend: () => undefined, resume: () => undefined, seated: (s) => s !== null && (seatedAt = s) },
    });
    cap.release(again);
    fp.set(seatedAt, child.pid!);
    // Only the fast path delivers this one (the main thread's own notice could otherwise give the
    // idle unit back, and unwatch it, before the thread reads its copy: no stop, nothing to report).
    await batchSide.listener.stop();
    const second = await onlineSide.allocations.allocate({ kind: 'online', share: 1, devices: [`${onlineSide.options.nodeName}/cpu`] });
    await waitFor(async () => stops.length === 1, 'the fast stop report');
    expect(stops[0]).toMatchObject({ slot: seatedAt, pid: child.pid });
    expect(state(child.pid!)).not.toBe('T');
    await second.release();
    await cap.stop();
    await fp.stop();
  });
  it('an online-demand hint stops borrowed units at once (the thread), suspends their runs (the main thread), and continues them after the hold unless a revocation follows', async () => {
    const { batchSide, onlineSide, cap, fp, child } = await setup();
    const node = batchSide.options.nodeName;
    const { events, preempt } = processHold(fp, child);
    const slot = await cap.acquire({ mayBorrow: true, priority: 50, preempt });
    expect(slot.borrowed).toBe(true);
    // A hint alone: stopped now, continued after the hold (no revocation came).
    await onlineSide.ledger.announceOnlineDemand(node);
    await waitFor(async () => state(child.pid!) === 'T', 'the stop on the hint');
    await waitFor(async () => events.length === 1, 'the run suspended on the main thread');
    expect(events).toEqual(['suspend']);
    await waitFor(async () => state(child.pid!) !== 'T', 'the process continued after the hold');
    expect(events).toEqual(['suspend', 'resume']);
    expect(logs.some((l) => l.msg === 'batch unit continued: no revocation followed the online-demand hint')).toBe(true);
    // A hint for another node stops nothing.
    await onlineSide.ledger.announceOnlineDemand(`${node}-other`);
    await new Promise((r) => setTimeout(r, 100));
    expect(state(child.pid!)).not.toBe('T');
    expect(events).toEqual(['suspend', 'resume']);
    // Hint, then the revocation: the stop is the hint's, ahead of the ledger.
    await onlineSide.ledger.announceOnlineDemand(node);
    await waitFor(async () => state(child.pid!) === 'T', 'the stop on the second hint');
    const lease = await onlineSide.allocations.allocate({ kind: 'online', share: 1, devices: [`${node}/cpu`] });
    expect(lease.grant.preempted).toBe(1);
    await new Promise((r) => setTimeout(r, 600)); // past the hold: a revoked unit stays stopped
    expect(state(child.pid!)).toBe('T');
    expect(events.at(-1)).toBe('suspend');
    expect(events.filter((e) => e === 'resume')).toHaveLength(1);
    const line = logs.find((l) => l.msg === 'revoked batch unit off the cores' && l.obj.hint === true);
    expect(Number(line?.obj.ledgerRevokeToFreeMs)).toBeLessThan(0); // stopped before the ledger revoked it
    await lease.release();
    await cap.stop();
    await fp.stop();
  });

  it('the node-local hint (a file the gateway writes) stops borrowed units with no database round trip; the NOTIFY copy of the same hint is dropped', async () => {
    const { batchSide, onlineSide, cap, fp: notifyOnly, child } = await setup();
    await notifyOnly.stop();
    const node = batchSide.options.nodeName;
    const dir = mkdtempSync(join(tmpdir(), 'tandem-hint-'));
    const fp = await RevocationFastPath.start(db.url, node, logger, dir);
    cap.useFastPath(fp);
    const { events, preempt } = processHold(fp, child);
    const slot = await cap.acquire({ mayBorrow: true, priority: 50, preempt });
    expect(slot.borrowed).toBe(true);
    new LocalDemandHint(dir, `${node}-other`).raise(); // another node's file
    await new Promise((r) => setTimeout(r, 100));
    expect(state(child.pid!)).not.toBe('T');
    new LocalDemandHint(dir, node).raise(); // no NOTIFY has been sent: only the file can stop it
    await waitFor(async () => state(child.pid!) === 'T', 'the stop on the local hint');
    await onlineSide.ledger.announceOnlineDemand(node); // the same hint by NOTIFY, right after
    await waitFor(async () => events.length > 0, 'the run suspended on the main thread');
    await waitFor(async () => state(child.pid!) !== 'T', 'the process continued after the hold');
    expect(events).toEqual(['suspend', 'resume']); // one hint, one hold
    cap.release(slot);
    await cap.stop();
    await fp.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('after a hint no new run is seated on a borrowed unit until the hold passes (a unit between runs would escape the stop)', async () => {
    const { batchSide, onlineSide, cap, fp } = await setup();
    const first = await cap.acquire({ mayBorrow: true, priority: 50 });
    expect(first.borrowed).toBe(true);
    cap.release(first); // idle, between runs
    await onlineSide.ledger.announceOnlineDemand(batchSide.options.nodeName);
    await new Promise((r) => setTimeout(r, 50));
    let runnable = false;
    const gate = cap.whenRunnable().then(() => (runnable = true)); // chunks wait before reading their payload too
    const t0 = Date.now();
    const next = cap.acquire({ mayBorrow: true, priority: 50 });
    expect(await Promise.race([next.then(() => 'seated'), new Promise((r) => setTimeout(() => r('waiting'), 200))])).toBe('waiting');
    expect(runnable).toBe(false);
    const seated = await next; // no revocation followed: the hold passed
    await gate;
    expect(seated.borrowed).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
    cap.release(seated);
    await cap.stop();
    await fp.stop();
  });
});
