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

/**
 * Given, on admission, the function that gives the request's place back: the caller calls it
 * once the request's body is read, or the upload ended without it (client gone, bad input).
 */
export type AdmissionHold = (release: () => void) => void;

interface Waiter {
  resolve: (refusal: DomainException | undefined) => void;
  timer: NodeJS.Timeout;
  hold?: AdmissionHold;
}

/** Waiters beyond this many times max_queue_size are refused at once. */
const WAITLIST_FACTOR = 2;
/** A place held for an upload is given back after this long even if its release never comes (a safety net). */
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
   * Places held by admitted uploads not yet read, each with its safety-net timer. They count as
   * queued: before, an admission was forgotten after 25 ms, bodies still being read under
   * overload were not counted, and ~45 % of admitted 110 KB uploads at 600 clients were read,
   * then refused at the queue (docs/benchmarks.md, "Admission counts uploads in transit").
   */
  private readonly transit = new Set<NodeJS.Timeout>();

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

  /**
   * undefined: go ahead (synchronously in the common case); else the 503, at once or after
   * waiting for room. `hold`: the request's body is still to be read; its place is held until
   * the release `hold` is given is called.
   */
  admit(hold?: AdmissionHold): DomainException | undefined | Promise<DomainException | undefined> {
    const s = this.state();
    const waitMs = this.opts.maxQueueTimeMs ?? 0;
    if (s.closed || s.replicas === 0 || waitMs === 0) return this.refusal(this.transit.size) ?? this.depart(hold);
    if (this.waiters.length === 0 && !this.full(s, this.transit.size)) return this.depart(hold);
    if (this.waiters.length >= WAITLIST_FACTOR * this.opts.maxQueueSize) return this.refusal(Number.MAX_SAFE_INTEGER);
    return new Promise((resolve) => {
      const w: Waiter = {
        hold,
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

  /** Admitted uploads still being read (they hold places in the queue). */
  get inTransit(): number {
    return this.transit.size;
  }

  /** The queue shrank (a batch left, a request expired) or closed: admit waiters while there is room. */
  wake(): void {
    while (this.waiters.length > 0) {
      const s = this.state();
      const gone = s.closed || s.replicas === 0;
      if (!gone && this.full(s, this.transit.size)) return;
      const w = this.waiters.shift()!;
      clearTimeout(w.timer);
      if (gone) {
        w.resolve(this.refusal());
        continue;
      }
      w.resolve(this.depart(w.hold));
    }
  }

  /**
   * Admits one request; one still to be read holds a place until its release (or
   * IN_TRANSIT_MAX_MS). One already read holds it until the next turn of the event loop, by
   * which time it has reached the queue: several admitted in one wake() must not share a place.
   */
  private depart(hold: AdmissionHold = (release) => void setImmediate(release)): undefined {
    const release = (): void => {
      if (!this.transit.delete(t)) return; // released already
      clearTimeout(t);
      this.wake();
    };
    const t = setTimeout(release, IN_TRANSIT_MAX_MS);
    t.unref();
    this.transit.add(t);
    hold(release);
    return undefined;
  }
}
