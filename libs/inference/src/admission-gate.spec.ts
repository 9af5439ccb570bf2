import { describe, expect, it } from 'vitest';
import { DomainException } from '@tandem/shared';
import { AdmissionGate, type QueueState } from './admission-gate';
import { NOOP_OBSERVER } from './inference-observer';

const opts = { model: 'm', version: '1', maxBatchSize: 4, maxQueueSize: 100, maxQueueTimeMs: 200 };

function gate(state: QueueState): AdmissionGate {
  return new AdmissionGate(opts, () => state, NOOP_OBSERVER);
}

describe('AdmissionGate', () => {
  it('bounds the queue in time: estimated wait = queued rows × ms per row ÷ slots, past one full batch per slot', () => {
    const s: QueueState = { depth: 10, queuedRows: 40, rowMs: 10, slots: 2, replicas: 2, closed: false };
    expect(AdmissionGate.estimatedWaitMs(s, 4)).toBe(200);
    expect(gate(s).refusal()).toBeUndefined();
    s.queuedRows = 60; // 300 ms of work
    const e = gate(s).refusal();
    expect(e).toBeInstanceOf(DomainException);
    expect(e!.message).toMatch(/about 300 ms of work queued \(limit 200 ms\)/);
    expect(AdmissionGate.estimatedWaitMs({ ...s, queuedRows: 7 }, 4)).toBe(0); // under one batch per slot
    expect(AdmissionGate.estimatedWaitMs({ ...s, rowMs: NaN }, 4)).toBe(0); // nothing ran yet
  });

  it('a request finding the queue full waits unread and is admitted in order when it drains, else refused after the time bound', async () => {
    const s: QueueState = { depth: 100, queuedRows: 100, rowMs: 1, slots: 1, replicas: 1, closed: false };
    const g = gate(s);
    const first = g.admit();
    const second = g.admit();
    expect(first).toBeInstanceOf(Promise);
    s.depth = 99; // one place
    g.wake();
    expect(await first).toBeUndefined();
    s.depth = 100; // it reached the queue: full again
    const t0 = Date.now();
    expect(await second).toBeInstanceOf(DomainException);
    // Waited its 200 ms for room, then answered no sooner than 1 s after it arrived (Retry-After).
    expect(Date.now() - t0).toBeGreaterThanOrEqual(990);
    s.depth = 0;
    await new Promise((r) => setTimeout(r, 40)); // in-transit allowance over
    expect(g.admit()).toBeUndefined();
  });

  it('with the waitlist full, refusals are held to 1 s after arrival, up to 4 × max_queue_size of them, then answered at once', async () => {
    const s: QueueState = { depth: 1, queuedRows: 1, rowMs: 1, slots: 1, replicas: 1, closed: false };
    const g = new AdmissionGate({ ...opts, maxQueueSize: 1 }, () => s, NOOP_OBSERVER);
    const waiting = [g.admit(), g.admit()]; // the waitlist: 2 × max_queue_size
    expect(waiting.every((w) => w instanceof Promise)).toBe(true);
    const t0 = Date.now();
    const held = [1, 2, 3, 4].map(() => g.admit());
    expect(held.every((h) => h instanceof Promise)).toBe(true);
    const now = g.admit();
    expect(now).toBeInstanceOf(DomainException);
    for (const h of held) expect(await h).toBeInstanceOf(DomainException);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(990);
    for (const w of waiting) expect(await w).toBeInstanceOf(DomainException);
  });

  it('no replica or unloading: refused at once, never waits', () => {
    expect(gate({ depth: 0, queuedRows: 0, rowMs: NaN, slots: 0, replicas: 0, closed: false }).admit()).toBeInstanceOf(DomainException);
    expect(gate({ depth: 100, queuedRows: 0, rowMs: NaN, slots: 1, replicas: 1, closed: true }).admit()).toBeInstanceOf(DomainException);
  });
});
