import { describe, expect, it } from 'vitest';
import type { Lease } from '../lease/lease';
import type { NodeLedger } from '../node-ledger';
import type { SchedulerLogger } from '../scheduler.logger';
import { OnlineClaimer } from './online-claimer';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined } as unknown as SchedulerLogger;
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

/** A 2-core CPU device, online partition 1.0; records every allocation asked for. */
function fakeNode(): { node: NodeLedger; asked: number[]; released: number[]; hints: string[] } {
  const asked: number[] = [];
  const released: number[] = [];
  const hints: string[] = [];
  const device = { id: 'n/cpu', kind: 'cpu', cores: 2, partition: { online: 1, batch: 0, batchMayBorrow: true } };
  const node = {
    nodeName: 'n',
    ledger: {
      usableDevices: () => Promise.resolve([device]),
      announceOnlineDemand: (n: string) => (hints.push(n), Promise.resolve()),
      openDemandChannel: () => Promise.resolve(),
      closeDemandChannel: () => undefined,
    },
    allocations: {
      defaultHolder: 'gw',
      allocate: (req: { share: number }) => {
        asked.push(req.share);
        const lease = {
          id: `l${asked.length}`,
          state: 'active',
          grant: { preempted: 1, threads: Math.floor(req.share * 2) },
          release: () => {
            lease.state = 'released';
            released.push(req.share);
            return Promise.resolve();
          },
        };
        return Promise.resolve(lease as unknown as Lease);
      },
    },
  } as unknown as NodeLedger;
  return { node, asked, released, hints };
}

describe('OnlineClaimer', () => {
  it('on a nudge, claims the whole partition at once as one allocation (one revoking transaction)', async () => {
    const { node, asked, hints } = fakeNode();
    let want = 0;
    const c = new OnlineClaimer(node, { tickMs: 60_000, holdDownMs: 60_000, retryMs: 1_000 }, quiet);
    c.start(() => new Map([['gateway', want]]));
    want = Number.POSITIVE_INFINITY;
    c.nudge(); // no 60 s tick in between
    expect(hints).toEqual(['n']); // the batch workers' hint goes out before the claim's transaction
    await settle();
    expect(asked).toEqual([1]);
    expect(c.snapshot()).toEqual([{ key: 'gateway', wanted: 2, held: 2, allocationGroups: ['l1'] }]);
    c.nudge(); // already held: no further ledger call, no hint
    await settle();
    expect(asked).toEqual([1]);
    expect(hints).toEqual(['n']);
    await c.stop();
  });

  it('the first request after idle raises the hint even when a tick ran in the same millisecond', async () => {
    const { node, asked, hints } = fakeNode();
    const c = new OnlineClaimer(node, { tickMs: 60_000, holdDownMs: 60_000, retryMs: 1_000, claimAfterHintMs: 0 }, quiet);
    c.start(() => new Map([['gateway', Number.POSITIVE_INFINITY]]));
    // A tick that looked (and found no traffic) just before the request arrived.
    (c as unknown as { lastRunAt: number }).lastRunAt = performance.now();
    c.nudge();
    expect(hints).toEqual(['n']); // the units' hint is not throttled with the look
    await settle();
    expect(asked).toEqual([]); // the look itself is: the next tick or nudge claims
    c.nudge();
    await settle();
    expect(asked).toEqual([1]);
    expect(hints).toEqual(['n']); // one hint per idle → busy
    await c.stop();
  });

  it('with claimAfterHintMs, the hint goes out at once and the claim only after that delay', async () => {
    const { node, asked, hints } = fakeNode();
    const c = new OnlineClaimer(node, { tickMs: 1, holdDownMs: 60_000, retryMs: 1_000, claimAfterHintMs: 400 }, quiet);
    c.start(() => new Map([['gateway', Number.POSITIVE_INFINITY]]));
    const t0 = performance.now();
    c.nudge();
    expect(hints).toEqual(['n']);
    await settle(); // ticks every ms meanwhile
    expect(asked).toEqual([]);
    // Requests keep nudging while the claim is pending: no second hint, and the claim is not pushed back.
    for (let i = 0; i < 200 && asked.length === 0; i++) {
      c.nudge();
      await settle();
    }
    expect(hints).toEqual(['n']);
    expect(asked).toEqual([1]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(400);
    await c.stop();
  });

  it('claims per core when only part of the partition is wanted, and releases after the hold-down', async () => {
    const { node, asked, released } = fakeNode();
    let want = 1;
    const c = new OnlineClaimer(node, { tickMs: 60_000, holdDownMs: 0, retryMs: 1_000 }, quiet);
    await c.tick(new Map([['m', want]]));
    await settle();
    expect(asked).toEqual([0.5]);
    want = 0;
    await c.tick(new Map([['m', want]]));
    expect(released).toEqual([0.5]);
    expect(c.snapshot()).toEqual([{ key: 'm', wanted: 0, held: 0, allocationGroups: [] }]);
  });
});
