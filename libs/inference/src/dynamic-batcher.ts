import { performance } from 'node:perf_hooks';
import { DomainException, ErrorCode } from '@tandem/shared';
import { AdmissionGate, type AdmissionHold, type QueueState } from './admission-gate';
import { concatInputs, scatterOutputs, shapeKey } from './batch-merge';
import { NOOP_OBSERVER, type InferenceObserver } from './inference-observer';
import type { Replica, ReplicaPool } from './replica-pool';
import type { RunOptions } from './run-options';
import type { InferTensor } from './tensor';
import { batchArray } from './tensor-ownership';

export interface BatcherOptions {
  model: string;
  version: string;
  /** 0 = no batch dimension: every request runs alone. */
  maxBatchSize: number;
  /**
   * Rows a merged batch aims for (Triton's preferred_batch_size, largest entry): a group this
   * big is dispatched at once and merging stops there; a single larger request still runs.
   * Default max_batch_size.
   */
  preferredBatchSize?: number;
  maxQueueDelayUs: number;
  /** Queued requests beyond which submit() answers 503. */
  maxQueueSize: number;
  /**
   * The queue's length in time: estimated wait (queued rows × recent compute ms per row ÷
   * replica slots) beyond which a request is refused with 503, so an admitted one is answered
   * in about this long. 0 = bounded by maxQueueSize only.
   */
  maxQueueTimeMs?: number;
}

export interface BatchedResult {
  outputs: InferTensor[];
  queueMs: number;
  computeMs: number;
  /** Rows in the batch this request ran in (observability, tests). */
  batchItems: number;
}

interface Pending {
  inputs: readonly InferTensor[];
  rows: number;
  enqueuedAt: number;
  /** Epoch ms (runners in other threads compare it with their own clock). */
  deadlineAt: number;
  timer: NodeJS.Timeout | undefined;
  resolve: (r: BatchedResult) => void;
  reject: (e: unknown) => void;
}

interface Group {
  items: Pending[];
  rows: number;
}

export interface BatcherStats {
  batches: number;
  items: number;
  requests: number;
  largestBatch: number;
}

/**
 * Per-model-version dynamic batcher. Requests wait in per-shape groups (only same-shape
 * requests merge); a group is dispatched to a free replica when it holds max_batch_size rows
 * or its oldest request has waited max_queue_delay_us. Deadlines are enforced while queued:
 * an expired request is answered 504 and removed, so it never reaches a replica.
 */
export class DynamicBatcher {
  private readonly groups = new Map<string, Group>();
  private depth = 0;
  private queuedRows = 0;
  /** Recent compute ms per row (moving average over batches); NaN until a batch ran. */
  private rowMs = NaN;
  private wakeTimer: NodeJS.Timeout | undefined;
  private wakeAt = Infinity;
  private closed = false;
  /** Sees every dispatch (the model's keep-warm tracks which replicas are idle). */
  onDispatch: (replica: Replica, now: number) => void = () => undefined;
  readonly stats: BatcherStats = { batches: 0, items: 0, requests: 0, largestBatch: 0 };
  private readonly gate: AdmissionGate;

  constructor(
    private readonly pool: ReplicaPool,
    private readonly opts: BatcherOptions,
    private readonly observer: InferenceObserver = NOOP_OBSERVER,
  ) {
    pool.onAvailable = () => this.pump();
    this.gate = new AdmissionGate(opts, () => this.queueState, observer);
  }

  private get batchCap(): number {
    const p = this.opts.preferredBatchSize ?? 0;
    return p > 0 ? Math.min(p, this.opts.maxBatchSize) : this.opts.maxBatchSize;
  }

  get queueDepth(): number {
    return this.depth;
  }

  /** Admitted requests whose bodies are still being read: they hold places in the queue. */
  get admissionsInTransit(): number {
    return this.gate.inTransit;
  }

  /** Queued rows and recent compute ms per row: what the admission gate estimates waits from. */
  get queueState(): QueueState {
    return { depth: this.depth, queuedRows: this.queuedRows, rowMs: this.rowMs, slots: this.pool.slots, replicas: this.pool.size, closed: this.closed };
  }

  /** Whether a request may go ahead now (undefined) or the 503 it gets, after waiting unread for room when the queue is full (see AdmissionGate). */
  admit(hold?: AdmissionHold): DomainException | undefined | Promise<DomainException | undefined> {
    return this.gate.admit(hold);
  }

  /** Queues validated inputs; resolves with this request's slice of the batch outputs. */
  submit(inputs: readonly InferTensor[], timeoutMs: number): Promise<BatchedResult> {
    const refused = this.gate.refusal();
    if (refused) return Promise.reject(refused);
    const { model, version } = this.opts;
    const key = this.opts.maxBatchSize > 0 ? shapeKey(inputs) : '';
    const rows = this.opts.maxBatchSize > 0 ? inputs[0]!.shape[0]! : 1;
    return new Promise<BatchedResult>((resolve, reject) => {
      const p: Pending = { inputs, rows, enqueuedAt: performance.now(), deadlineAt: Date.now() + timeoutMs, timer: undefined, resolve, reject };
      let g = this.groups.get(key);
      if (!g) {
        g = { items: [], rows: 0 };
        this.groups.set(key, g);
      }
      g.items.push(p);
      g.rows += rows;
      this.queuedRows += rows;
      this.depth++;
      p.timer = setTimeout(() => this.expire(key, p, timeoutMs), timeoutMs);
      this.observer.queueDepth(model, version, this.depth);
      this.pump();
    });
  }

  private expire(key: string, p: Pending, timeoutMs: number): void {
    const g = this.groups.get(key);
    const i = g ? g.items.indexOf(p) : -1;
    if (!g || i < 0) return;
    g.items.splice(i, 1);
    g.rows -= p.rows;
    this.queuedRows -= p.rows;
    if (g.items.length === 0) this.groups.delete(key);
    this.depth--;
    this.observer.queueDepth(this.opts.model, this.opts.version, this.depth);
    this.observer.rejected(this.opts.model, this.opts.version, 'deadline_exceeded');
    this.gate.wake();
    p.reject(new DomainException(ErrorCode.DeadlineExceeded, `deadline of ${timeoutMs} ms exceeded while queued for model '${this.opts.model}'`));
  }

  /** Dispatches every ready group while replicas have room. */
  private pump(): void {
    while (this.depth > 0 && this.pool.hasCapacity()) {
      const now = performance.now();
      const delayMs = this.opts.maxQueueDelayUs / 1000;
      let chosen: [string, Group] | undefined;
      let nextReady = Infinity;
      for (const entry of this.groups) {
        const g = entry[1];
        const head = g.items[0]!;
        const readyAt = head.enqueuedAt + delayMs;
        const full = this.opts.maxBatchSize === 0 || g.rows >= this.batchCap;
        if (full || readyAt <= now) {
          if (!chosen || head.enqueuedAt < chosen[1].items[0]!.enqueuedAt) chosen = entry;
        } else if (readyAt < nextReady) nextReady = readyAt;
      }
      if (!chosen) {
        this.scheduleWake(nextReady);
        return;
      }
      const replica = this.pool.acquire()!;
      this.dispatch(chosen[0], chosen[1], replica, now);
    }
  }

  private scheduleWake(at: number): void {
    if (at === Infinity || at >= this.wakeAt) return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = setTimeout(
      () => {
        this.wakeTimer = undefined;
        this.wakeAt = Infinity;
        this.pump();
      },
      Math.max(0, at - performance.now()),
    );
  }

  private dispatch(key: string, g: Group, replica: Replica, now: number): void {
    const max = Math.max(1, this.batchCap);
    const batch: Pending[] = [];
    let rows = 0;
    while (g.items.length > 0 && (batch.length === 0 || rows + g.items[0]!.rows <= max)) {
      const p = g.items.shift()!;
      clearTimeout(p.timer);
      rows += p.rows;
      batch.push(p);
    }
    g.rows -= rows;
    this.queuedRows -= rows;
    if (g.items.length === 0) this.groups.delete(key);
    this.depth -= batch.length;
    const { model, version } = this.opts;
    this.observer.queueDepth(model, version, this.depth);
    for (const p of batch) this.observer.dequeued(model, version, now - p.enqueuedAt);
    this.onDispatch(replica, now);
    void this.run(batch, rows, replica, now);
    this.gate.wake();
  }

  private async run(batch: Pending[], rows: number, replica: Replica, startedAt: number): Promise<void> {
    const { model, version } = this.opts;
    try {
      // Recycled buffers where the replica gives its inputs back after the run.
      const alloc = replica.runner.returnsInputs ? batchArray : undefined;
      const merged =
        this.opts.maxBatchSize > 0
          ? concatInputs(
              batch.map((p) => p.inputs),
              alloc,
            )
          : batch[0]!.inputs;
      // Merged inputs are buffers nobody else holds: hand them to the worker without a copy.
      // The deadline and request sizes let a node model's runner bound and describe the batch.
      const opts: RunOptions = {
        transfer: batch.length > 1,
        deadlineAt: batch.reduce((m, p) => Math.max(m, p.deadlineAt), 0),
        requests: batch.map((p) => p.rows),
      };
      const outputs = await replica.runner.runUnchecked(merged, undefined, opts);
      const computeMs = performance.now() - startedAt;
      const perRow = computeMs / Math.max(1, rows);
      this.rowMs = Number.isNaN(this.rowMs) ? perRow : 0.8 * this.rowMs + 0.2 * perRow;
      const parts =
        this.opts.maxBatchSize > 0
          ? scatterOutputs(
              outputs,
              batch.map((p) => p.rows),
            )
          : [outputs];
      this.stats.batches++;
      this.stats.items += rows;
      this.stats.requests += batch.length;
      this.stats.largestBatch = Math.max(this.stats.largestBatch, rows);
      this.observer.batch(model, version, rows, batch.length, computeMs);
      batch.forEach((p, i) => p.resolve({ outputs: parts[i]!, queueMs: startedAt - p.enqueuedAt, computeMs, batchItems: rows }));
    } catch (e) {
      this.observer.rejected(model, version, 'model_error');
      for (const p of batch) p.reject(e);
    } finally {
      this.pool.release(replica);
    }
  }

  /** Rejects everything queued (unload/shutdown); in-flight batches finish. */
  /**
   * Stops taking requests and resolves once every queued and running one has been answered
   * (model reload/unload: the engine already routes new requests elsewhere).
   */
  async drain(): Promise<void> {
    this.closed = true;
    this.gate.wake();
    while (this.depth > 0 || this.pool.inflight > 0) await new Promise((r) => setTimeout(r, 5));
  }

  close(): void {
    this.closed = true;
    this.gate.wake();
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    for (const g of this.groups.values()) {
      for (const p of g.items) {
        clearTimeout(p.timer);
        p.reject(DomainException.unavailable(`model '${this.opts.model}' is unloading`));
      }
    }
    this.groups.clear();
    this.depth = 0;
    this.queuedRows = 0;
  }
}
