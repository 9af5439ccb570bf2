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
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    s.depth = 0;
    await new Promise((r) => setTimeout(r, 40)); // in-transit allowance over
    expect(g.admit()).toBeUndefined();
  });

  it('no replica or unloading: refused at once, never waits', () => {
    expect(gate({ depth: 0, queuedRows: 0, rowMs: NaN, slots: 0, replicas: 0, closed: false }).admit()).toBeInstanceOf(DomainException);
    expect(gate({ depth: 100, queuedRows: 0, rowMs: NaN, slots: 1, replicas: 1, closed: true }).admit()).toBeInstanceOf(DomainException);
  });
});
