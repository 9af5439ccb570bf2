import { performance } from 'node:perf_hooks';
import { DomainException, ErrorCode } from '@tandem/shared';
import { concatInputs, scatterOutputs, shapeKey } from './batch-merge';
import { NOOP_OBSERVER, type InferenceObserver } from './inference-observer';
import type { Replica, ReplicaPool } from './replica-pool';
import type { RunOptions } from './run-options';
import type { InferTensor } from './tensor';

export interface BatcherOptions {
  model: string;
  version: string;
  /** 0 = no batch dimension: every request runs alone. */
  maxBatchSize: number;
  maxQueueDelayUs: number;
  /** Queued requests beyond which submit() answers 503. */
  maxQueueSize: number;
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
  private wakeTimer: NodeJS.Timeout | undefined;
  private wakeAt = Infinity;
  private closed = false;
  readonly stats: BatcherStats = { batches: 0, items: 0, requests: 0, largestBatch: 0 };

  constructor(
    private readonly pool: ReplicaPool,
    private readonly opts: BatcherOptions,
    private readonly observer: InferenceObserver = NOOP_OBSERVER,
  ) {
    pool.onAvailable = () => this.pump();
  }

  get queueDepth(): number {
    return this.depth;
  }

  /** Queues validated inputs; resolves with this request's slice of the batch outputs. */
  submit(inputs: readonly InferTensor[], timeoutMs: number): Promise<BatchedResult> {
    const { model, version } = this.opts;
    if (this.closed) return Promise.reject(DomainException.unavailable(`model '${model}' is unloading`));
    if (this.pool.size === 0) {
      this.observer.rejected(model, version, 'no_replica');
      return Promise.reject(DomainException.unavailable(`model '${model}' has no replica`, 1));
    }
    if (this.depth >= this.opts.maxQueueSize) {
      this.observer.rejected(model, version, 'queue_full');
      return Promise.reject(DomainException.unavailable(`model '${model}' is overloaded: ${this.depth} requests queued`, 1));
    }
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
    if (g.items.length === 0) this.groups.delete(key);
    this.depth--;
    this.observer.queueDepth(this.opts.model, this.opts.version, this.depth);
    this.observer.rejected(this.opts.model, this.opts.version, 'deadline_exceeded');
    p.reject(
      new DomainException(ErrorCode.DeadlineExceeded, `deadline of ${timeoutMs} ms exceeded while queued for model '${this.opts.model}'`),
    );
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
        const full = this.opts.maxBatchSize === 0 || g.rows >= this.opts.maxBatchSize;
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
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      this.wakeAt = Infinity;
      this.pump();
    }, Math.max(0, at - performance.now()));
  }

  private dispatch(key: string, g: Group, replica: Replica, now: number): void {
    const max = Math.max(1, this.opts.maxBatchSize);
    const batch: Pending[] = [];
    let rows = 0;
    while (g.items.length > 0 && (batch.length === 0 || rows + g.items[0]!.rows <= max)) {
      const p = g.items.shift()!;
      clearTimeout(p.timer);
      rows += p.rows;
      batch.push(p);
    }
    g.rows -= rows;
    if (g.items.length === 0) this.groups.delete(key);
    this.depth -= batch.length;
    const { model, version } = this.opts;
    this.observer.queueDepth(model, version, this.depth);
    for (const p of batch) this.observer.dequeued(model, version, now - p.enqueuedAt);
    void this.run(batch, rows, replica, now);
  }

  private async run(batch: Pending[], rows: number, replica: Replica, startedAt: number): Promise<void> {
    const { model, version } = this.opts;
    try {
      const merged = this.opts.maxBatchSize > 0 ? concatInputs(batch.map((p) => p.inputs)) : batch[0]!.inputs;
      // Merged inputs are fresh buffers nobody else holds: hand them to the worker without a copy.
      // The deadline and request sizes let a node model's runner bound and describe the batch.
      const opts: RunOptions = { transfer: batch.length > 1, deadlineAt: batch.reduce((m, p) => Math.max(m, p.deadlineAt), 0), requests: batch.map((p) => p.rows) };
      const outputs = await replica.runner.runUnchecked(merged, undefined, opts);
      const computeMs = performance.now() - startedAt;
      const parts = this.opts.maxBatchSize > 0 ? scatterOutputs(outputs, batch.map((p) => p.rows)) : [outputs];
      this.stats.batches++;
      this.stats.items += rows;
      this.stats.requests += batch.length;
      this.stats.largestBatch = Math.max(this.stats.largestBatch, rows);
      this.observer.batch(model, version, rows, batch.length, computeMs);
      batch.forEach((p, i) =>
        p.resolve({ outputs: parts[i]!, queueMs: startedAt - p.enqueuedAt, computeMs, batchItems: rows }),
      );
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
    while (this.depth > 0 || this.pool.inflight > 0) await new Promise((r) => setTimeout(r, 5));
  }

  close(): void {
    this.closed = true;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    for (const g of this.groups.values()) {
      for (const p of g.items) {
        clearTimeout(p.timer);
        p.reject(DomainException.unavailable(`model '${this.opts.model}' is unloading`));
      }
    }
    this.groups.clear();
    this.depth = 0;
  }
}
