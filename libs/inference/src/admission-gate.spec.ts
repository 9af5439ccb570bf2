import { afterEach, describe, expect, it, vi } from 'vitest';
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
    expect(g.admit()).toBeUndefined();
  });

  describe('uploads in transit', () => {
    afterEach(() => void vi.useRealTimers());

    it('an admitted upload holds its place until it is read, so uploads being read are never over-admitted', async () => {
      const s: QueueState = { depth: 98, queuedRows: 98, rowMs: 0.1, slots: 1, replicas: 1, closed: false };
      const g = gate(s);
      const releases: (() => void)[] = [];
      const hold = (release: () => void): number => releases.push(release);
      expect(g.admit(hold)).toBeUndefined(); // 98 queued + 1 in transit
      expect(g.admit(hold)).toBeUndefined(); // + 2 in transit: 100, the limit
      const third = g.admit(hold); // its body stays unread
      expect(third).toBeInstanceOf(Promise);
      g.wake();
      let settled = false;
      void (third as Promise<unknown>).then(() => (settled = true));
      await Promise.resolve();
      expect(settled).toBe(false); // nothing left the queue: the two in transit still count
      s.depth = 99; // the first is read and queued...
      releases[0]!();
      await Promise.resolve();
      expect(settled).toBe(false); // ...so still 99 + 1 in transit
      releases[0]!(); // a second release of one place changes nothing
      await Promise.resolve();
      expect(settled).toBe(false);
      releases[1]!(); // the second upload was abandoned: its place is free at once
      expect(await third).toBeUndefined();
      expect(releases).toHaveLength(3); // admitted from the waitlist: it holds a place too
    });

    it('a place whose release never comes is given up after 2 s', async () => {
      vi.useFakeTimers();
      const s: QueueState = { depth: 99, queuedRows: 99, rowMs: 0.1, slots: 1, replicas: 1, closed: false };
      const g = gate(s);
      expect(g.admit(() => undefined)).toBeUndefined(); // its release is lost
      const early = g.admit();
      expect(early).toBeInstanceOf(Promise);
      await vi.advanceTimersByTimeAsync(1_900);
      expect(await early).toBeInstanceOf(DomainException); // refused at the 200 ms bound: the place is still held
      const late = g.admit();
      expect(late).toBeInstanceOf(Promise);
      await vi.advanceTimersByTimeAsync(101); // 2 s after the first admission: its place goes to the waiter
      expect(await late).toBeUndefined();
    });

    it('requests in transit count in the time bound too, at a row each', () => {
      // 4 rows per batch, 1 slot, 20 ms a row: 10 rows queued = 200 ms, the limit.
      const s: QueueState = { depth: 10, queuedRows: 10, rowMs: 20, slots: 1, replicas: 1, closed: false };
      const g = gate(s);
      s.queuedRows = 9; // 180 ms
      const hold = (): void => undefined;
      expect(g.admit(hold)).toBeUndefined(); // admitted at 180 ms
      expect(g.admit(hold)).toBeUndefined(); // + 1 in transit: 200 ms, not over
      expect(g.admit(hold)).toBeInstanceOf(Promise); // + 2: 220 ms
    });
  });

  it('no replica or unloading: refused at once, never waits', () => {
    expect(gate({ depth: 0, queuedRows: 0, rowMs: NaN, slots: 0, replicas: 0, closed: false }).admit()).toBeInstanceOf(DomainException);
    expect(gate({ depth: 100, queuedRows: 0, rowMs: NaN, slots: 1, replicas: 1, closed: true }).admit()).toBeInstanceOf(DomainException);
  });
});
