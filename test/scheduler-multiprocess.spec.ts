import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AllocationGrant, Scheduler } from '@tandem/scheduler';
import { createTestDatabase, type TestDatabase } from './support/test-env';
import { FAST, schedulerHarness, waitFor, type Harness } from './support/scheduler-harness';
import { compileWorker, WorkerNode } from './support/scheduler-children';

// A node is declared lost after the lease TTL, so everything of a dead node is reclaimed within it.
const TIMING = { ...FAST, leaseTtlMs: 2_000, nodeTimeoutMs: 2_000 } as const;

const gpus = (n: number, memoryMiB = 8192) =>
  Array.from({ length: n }, (_, i) => ({ kind: 'gpu' as const, index: i, name: 'Simulated GPU', memoryMiB, uuid: `GPU-sim-${i}` }));

describe('several scheduler processes on one Postgres', () => {
  let db: TestDatabase;
  let h: Harness;
  let admin: Scheduler; // this test process: no node of its own, only allocates and reaps
  let script: string;
  const workers: WorkerNode[] = [];

  beforeAll(async () => {
    script = compileWorker();
    db = await createTestDatabase();
    h = await schedulerHarness(db.url);
    admin = await h.make({ ...TIMING, nodeName: 'tester', agentEnabled: false });
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await h?.close();
    await db?.drop();
    rmSync(dirname(dirname(dirname(script))), { recursive: true, force: true });
  });

  it('four processes racing allocate/release on the same devices never over-allocate share or memory', async () => {
    const pool = await WorkerNode.start(script, db.url, { ...TIMING, nodeName: 'pool', declaredDevices: gpus(2) });
    workers.push(pool);
    const racers = await Promise.all([1, 2, 3, 4].map((i) => WorkerNode.start(script, db.url, { ...TIMING, nodeName: `racer-${i}`, agentEnabled: false })));
    workers.push(...racers);
    // 8 192 MiB devices and asks of up to 4 096 MiB: memory binds about as often as share does.
    const results = await Promise.all(
      racers.map((r, i) =>
        r.call<{ granted: number; refused: number; refusedMemory: number; violations: string[] }>({
          cmd: 'race',
          iterations: 120,
          devices: ['pool/gpu0', 'pool/gpu1'],
          seed: 17 + i,
          memoriesMiB: [0, 1024, 2048, 3072, 4096],
        }),
      ),
    );
    // Checked after every step in every racer: no device over its share or its memory.
    expect(results.flatMap((r) => r.violations)).toEqual([]);
    // The race really reached capacity on both resources (otherwise it proves nothing).
    const sum = (k: 'granted' | 'refused' | 'refusedMemory'): number => results.reduce((s, r) => s + r[k], 0);
    expect(sum('granted')).toBeGreaterThan(50);
    expect(sum('refusedMemory')).toBeGreaterThan(0);
    expect(sum('refused') - sum('refusedMemory')).toBeGreaterThan(0);
    expect(await admin.ledger.violations()).toEqual([]);
    expect(await admin.ledger.listAllocations()).toEqual([]);
    await Promise.all(racers.map((r) => r.stop()));
    await pool.stop();
  });

  it('places allocations across two nodes; a SIGKILLed node is marked lost and its leases reclaimed', async () => {
    const n1 = await WorkerNode.start(script, db.url, { ...TIMING, nodeName: 'n1', declaredDevices: gpus(2) });
    const n2 = await WorkerNode.start(script, db.url, { ...TIMING, nodeName: 'n2', declaredDevices: gpus(2) });
    workers.push(n1, n2);
    expect((await admin.ledger.listNodes()).filter((n) => n.name.startsWith('n')).map((n) => [n.name, n.status])).toEqual([
      ['n1', 'alive'],
      ['n2', 'alive'],
    ]);

    // Spread placement over both nodes' four GPUs.
    const placed = [];
    for (let i = 0; i < 4; i++)
      placed.push(
        await admin.allocations.allocate({ kind: 'batch', share: 0.5, deviceKind: 'gpu', nodes: ['n1', 'n2'], placement: 'spread', holder: 'spreader' }),
      );
    expect(new Set(placed.map((l) => l.grant.devices[0]!.node))).toEqual(new Set(['n1', 'n2']));
    expect(new Set(placed.map((l) => l.grant.devices[0]!.deviceId)).size).toBe(4);

    // n1's own process takes leases too, then dies without a word.
    const own = await n1.call<AllocationGrant>({ cmd: 'allocate', req: { kind: 'online', share: 0.25, nodes: ['n1'], holder: 'n1-replica' } });
    expect(own.devices[0]!.node).toBe('n1');
    const killedAt = Date.now();
    n1.child.kill('SIGKILL');
    await n1.exited;

    await waitFor(async () => (await admin.ledger.listNodes()).find((n) => n.name === 'n1' && n.status === 'lost'), 'n1 marked lost');
    const left = await waitFor(async () => {
      const rows = await admin.ledger.listAllocations();
      return rows.every((a) => !a.deviceId.startsWith('n1/') && a.holderNode !== 'n1') ? rows : null;
    }, 'n1 leases reclaimed');
    const reclaimMs = Date.now() - killedAt;
    // n2's allocations are untouched; n1's devices take nothing new.
    expect(left.map((a) => a.deviceId).sort()).toEqual(['n2/gpu0', 'n2/gpu1']);
    const again = await admin.allocations.allocate({ kind: 'batch', share: 0.5, deviceKind: 'gpu', nodes: ['n1', 'n2'], holder: 'spreader' });
    expect(again.grant.devices[0]!.node).toBe('n2');
    // The lease TTL is the contract; allow scheduling noise on a loaded machine on top of it.
    expect(reclaimMs).toBeLessThan(TIMING.leaseTtlMs + 5_000);
    await Promise.all([...placed, again].map((l) => l.release()));
    await n2.stop();
  });
});
