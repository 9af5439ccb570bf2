import type { Worker } from 'node:worker_threads';
import { compiledEntry, entryWorker } from '@tandem/inference';
import { localHintFile } from './local-demand-hint';
import { SCHEDULER_CHANNEL } from '../ledger/sql';
import type { SchedulerLogger } from '../scheduler.logger';
import type { RevocationNotice } from '../scheduler.types';
import type { FastPathThreadData, FromThread } from './revocation-fast-path.entry';
import { revocationNotice } from './revocation.listener';

/** A revoked unit whose process the fast path stopped. */
export interface FastStop {
  slot: number;
  pid: number;
  notice: RevocationNotice;
  /** When the thread got the notice, and when kill() returned (epoch ms). */
  receivedAtMs: number;
  stoppedAtMs: number;
}

/** Borrowed units' processes the fast path stopped on an online-demand hint (no revocation yet). */
export interface FastHold {
  slot: number;
  pid: number;
  groupId: string;
  receivedAtMs: number;
  stoppedAtMs: number;
}

/** Where a preemptible run's process is registered against its unit's slot. */
export interface UnitPidSlots {
  set(slot: number, pid: number): void;
  /** Clears the slot if it still names `pid`. */
  clear(slot: number, pid: number): void;
}

const SLOTS = 1024;

/**
 * Stops a revoked CPU unit's process from a thread of its own (SIGSTOP on the NOTIFY), then
 * tells the main thread, which does the bookkeeping as for any revocation (the same notice also
 * reaches it through its own LISTEN; a lease takes the first). The main thread's event loop can
 * be tens of ms late under batch work (measured: p50 12 ms, max 131 ms while a batch ran), and
 * every one of those ms the unit kept the cores online had just claimed.
 * The main thread registers which unit (slot) is which allocation, and which process runs a
 * preemptible run on it (shared memory, so the thread reads it without a message).
 */
export class RevocationFastPath implements UnitPidSlots {
  private readonly handlers = new Set<(s: FastStop) => void>();
  private readonly holdHandlers = new Set<(h: FastHold) => void>();
  private readonly hintHandlers = new Set<() => void>();

  private constructor(
    private readonly worker: Worker,
    private readonly pids: Int32Array,
    private readonly stops: Float64Array,
  ) {}

  /**
   * Starts the thread and waits for its LISTEN; if the thread dies later, revocations take the
   * main thread's path. `hintDir`: SchedulerOptions.hintDir, watched for this node's online-demand
   * hint besides the NOTIFY.
   */
  static async start(databaseUrl: string, node: string, logger: SchedulerLogger, hintDir: string | null = null): Promise<RevocationFastPath> {
    const pids = new Int32Array(new SharedArrayBuffer(4 * SLOTS));
    const stops = new Float64Array(new SharedArrayBuffer(8 * 3 * SLOTS));
    const data: FastPathThreadData = {
      url: databaseUrl,
      channel: SCHEDULER_CHANNEL,
      node,
      hintFile: hintDir ? localHintFile(hintDir, node) : null,
      pgPath: require.resolve('pg'),
      pids: pids.buffer as SharedArrayBuffer,
      stops: stops.buffer as SharedArrayBuffer,
    };
    const worker = entryWorker(await compiledEntry(__dirname, 'revocation-fast-path.entry'), data);
    worker.unref();
    const fp = new RevocationFastPath(worker, pids, stops);
    try {
      await new Promise<void>((resolve, reject) => {
        worker.once('error', reject);
        worker.on('message', (m: FromThread) => {
          if (m.type === 'ready') resolve();
          else if (m.type === 'error') reject(new Error(`revocation fast path: ${m.message}`));
          else if (m.type === 'held') for (const h of fp.holdHandlers) h(m);
          else if (m.type === 'hint') for (const h of fp.hintHandlers) h();
          else fp.emit(m);
        });
      });
    } catch (e) {
      await worker.terminate();
      throw e;
    }
    worker.on('error', (err) => logger.warn({ err }, 'revocation fast path thread failed; revocations take the main thread'));
    return fp;
  }

  private emit({ slot, pid, notice: n, receivedAtMs, stoppedAtMs }: Extract<FromThread, { type: 'stopped' }>): void {
    const notice = revocationNotice(n);
    for (const h of this.handlers) h({ slot, pid, notice, receivedAtMs, stoppedAtMs });
  }

  /** The unit in `slot` holds allocation group `groupId` (its lease; until unwatch); `borrowed` units also stop on an online-demand hint. */
  watch(groupId: string, slot: number, borrowed: boolean): void {
    if (slot < 0 || slot >= SLOTS) return;
    this.worker.postMessage({ type: 'watch', id: groupId, slot, borrowed });
  }

  unwatch(groupId: string): void {
    this.worker.postMessage({ type: 'unwatch', id: groupId });
  }

  set(slot: number, pid: number): void {
    if (slot >= 0 && slot < SLOTS && pid > 0) Atomics.store(this.pids, slot, pid);
  }

  clear(slot: number, pid: number): void {
    if (slot >= 0 && slot < SLOTS) Atomics.compareExchange(this.pids, slot, pid, 0);
  }

  /**
   * Whether this thread stopped the process on `slot` for the revocation at `revokedAtMs` (the
   * notice's instant), and when: the main thread's own copy of the notice can arrive first.
   */
  stoppedFor(slot: number, revokedAtMs: number): { receivedAtMs: number; stoppedAtMs: number } | null {
    if (slot < 0 || slot >= SLOTS || this.stops[3 * slot] !== revokedAtMs) return null;
    return { receivedAtMs: this.stops[3 * slot + 1]!, stoppedAtMs: this.stops[3 * slot + 2]! };
  }

  /** An online-demand hint for this node arrived (after the `onHeld` of the units it stopped). */
  onHint(h: () => void): () => void {
    this.hintHandlers.add(h);
    return () => this.hintHandlers.delete(h);
  }

  onHeld(h: (x: FastHold) => void): () => void {
    this.holdHandlers.add(h);
    return () => this.holdHandlers.delete(h);
  }

  onStopped(h: (s: FastStop) => void): () => void {
    this.handlers.add(h);
    return () => this.handlers.delete(h);
  }

  async stop(): Promise<void> {
    this.handlers.clear();
    this.holdHandlers.clear();
    this.hintHandlers.clear();
    const exited = new Promise<void>((r) => this.worker.once('exit', () => r()));
    this.worker.postMessage({ type: 'close' });
    const t = setTimeout(() => void this.worker.terminate(), 2_000);
    await exited;
    clearTimeout(t);
  }
}
