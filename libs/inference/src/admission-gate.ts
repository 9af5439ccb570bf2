import { DomainException } from '@tandem/shared';
import type { InferenceObserver } from './inference-observer';

/** What the gate reads from its batcher at each decision. */
export interface QueueState {
  depth: number;
  queuedRows: number;
  /** Recent compute ms per row; NaN until a batch ran. */
  rowMs: number;
  /** Batches the replicas may run at once. */
  slots: number;
  replicas: number;
  closed: boolean;
}

export interface AdmissionOptions {
  model: string;
  version: string;
  maxBatchSize: number;
  maxQueueSize: number;
  /** The queue's length in time (estimated wait); 0 = requests only. */
  maxQueueTimeMs?: number;
}

interface Waiter {
  resolve: (refusal: DomainException | undefined) => void;
  timer: NodeJS.Timeout;
}

/** Waiters beyond this many times max_queue_size are refused at once. */
const WAITLIST_FACTOR = 2;
/**
 * An admitted request counts as queued from admission until it reaches the queue (its body is
 * read meanwhile), or at most this long: a request that never arrives (upload abandoned, bad
 * input) stops holding its place after it.
 */
const IN_TRANSIT_MAX_MS = 2_000;

/**
 * Admission in front of a batcher. A request that finds the queue full (max_queue_size requests,
 * or max_queue_time_ms of estimated work) waits in a FIFO, its body unread (TCP holds the
 * upload back), for up to max_queue_time_ms, and is admitted when the queue drains; only
 * then, or when the waitlist is full, is it refused with 503. Under a retry storm clients then
 * cycle at most once per max_queue_time_ms instead of once per round trip, each refusal
 * costing a timer rather than a request handled, and an admitted request is answered within
 * about 2 × max_queue_time_ms plus its compute.
 */
export class AdmissionGate {
  private readonly waiters: Waiter[] = [];
  /**
   * Admitted requests not yet in the queue, oldest first, each with its fallback timer. They
   * count as queued: before, an admission was forgotten after 25 ms, bodies still being read
   * under overload were not counted, and ~45 % of admitted 110 KB uploads at 600 clients were
   * read, then refused at the queue (docs/benchmarks.md, "Admission counts uploads in transit").
   */
  private readonly transit: NodeJS.Timeout[] = [];

  constructor(
    private readonly opts: AdmissionOptions,
    private readonly state: () => QueueState,
    private readonly observer: InferenceObserver,
  ) {}

  /** Estimated ms before a request queued now would start (0 while the queue holds less than one full batch per slot). */
  static estimatedWaitMs(s: QueueState, maxBatchSize: number, rows = s.queuedRows): number {
    if (s.slots === 0 || Number.isNaN(s.rowMs) || rows < Math.max(1, maxBatchSize) * s.slots) return 0;
    return (rows * s.rowMs) / s.slots;
  }

  /**
   * Whether the queue (plus `extra` requests on their way, at least a row each) is full, in
   * requests or in estimated time; no allocation.
   */
  private full(s: QueueState, extra: number): boolean {
    if (s.depth + extra >= this.opts.maxQueueSize) return true;
    const maxMs = this.opts.maxQueueTimeMs ?? 0;
    return maxMs > 0 && AdmissionGate.estimatedWaitMs(s, this.opts.maxBatchSize, s.queuedRows + extra) > maxMs;
  }

  /** The 503 a request gets if it were queued now, or undefined. */
  refusal(extra = 0): DomainException | undefined {
    const { model, version } = this.opts;
    const s = this.state();
    if (s.closed) return DomainException.unavailable(`model '${model}' is unloading`);
    if (s.replicas === 0) {
      this.observer.rejected(model, version, 'no_replica');
      return DomainException.unavailable(`model '${model}' has no replica`, 1);
    }
    if (!this.full(s, extra)) return undefined;
    this.observer.rejected(model, version, 'queue_full');
    const maxMs = this.opts.maxQueueTimeMs ?? 0;
    const waitMs = AdmissionGate.estimatedWaitMs(s, this.opts.maxBatchSize);
    if (maxMs > 0 && waitMs > maxMs) {
      return DomainException.unavailable(
        `model '${model}' is overloaded: about ${Math.round(waitMs)} ms of work queued (limit ${maxMs} ms)`,
        Math.max(1, waitMs / 1000),
      );
    }
    return DomainException.unavailable(`model '${model}' is overloaded: ${s.depth} requests queued`, 1);
  }

  /** undefined: go ahead (synchronously in the common case); else the 503, at once or after waiting for room. */
  admit(): DomainException | undefined | Promise<DomainException | undefined> {
    const s = this.state();
    const waitMs = this.opts.maxQueueTimeMs ?? 0;
    if (s.closed || s.replicas === 0 || waitMs === 0) return this.refusal(this.transit.length) ?? this.depart();
    if (this.waiters.length === 0 && !this.full(s, this.transit.length)) return this.depart();
    if (this.waiters.length >= WAITLIST_FACTOR * this.opts.maxQueueSize) return this.refusal(Number.MAX_SAFE_INTEGER);
    return new Promise((resolve) => {
      const w: Waiter = {
        resolve,
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          resolve(this.refusal(Number.MAX_SAFE_INTEGER));
        }, waitMs),
      };
      this.waiters.push(w);
    });
  }

  /** The queue shrank (a batch left, a request expired) or closed: admit waiters while there is room. */
  wake(): void {
    while (this.waiters.length > 0) {
      const s = this.state();
      const gone = s.closed || s.replicas === 0;
      if (!gone && this.full(s, this.transit.length)) return;
      const w = this.waiters.shift()!;
      clearTimeout(w.timer);
      if (gone) {
        w.resolve(this.refusal());
        continue;
      }
      w.resolve(this.depart());
    }
  }

  /** An admitted request reached the queue (submit): its place in transit becomes its place in the queue. */
  arrived(): void {
    const t = this.transit.shift();
    if (t) clearTimeout(t);
  }

  /** Admits one request: it counts as queued until it arrives, or IN_TRANSIT_MAX_MS. */
  private depart(): undefined {
    const t = setTimeout(() => {
      const i = this.transit.indexOf(t);
      if (i >= 0) this.transit.splice(i, 1);
      this.wake();
    }, IN_TRANSIT_MAX_MS);
    t.unref();
    this.transit.push(t);
    return undefined;
  }
}
