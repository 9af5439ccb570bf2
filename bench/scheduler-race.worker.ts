/**
 * Child process of bench/scheduler.bench.ts: races allocate/release on the bench's devices, or
 * plays a batch holder that borrows a share and yields it when revoked. Driven over IPC.
 */
import 'reflect-metadata';
import { performance } from 'node:perf_hooks';
import { DataSource } from 'typeorm';
import { DomainException, ErrorCode } from '@tandem/shared';
import { buildDataSourceOptions } from '@tandem/persistence';
import { defaultSchedulerOptions, Scheduler, StaticGpuProbe, type Lease } from '@tandem/scheduler';
import { seededRandom } from '../scripts/fuzz/prng';

export type RaceCommand =
  | { id: number; cmd: 'race'; durationMs: number; devices: string[]; seed: number; checkInvariant: boolean }
  | { id: number; cmd: 'borrow'; device: string }
  | { id: number; cmd: 'stop' };

export interface RaceResult {
  latenciesMs: number[];
  /** The subset of latencies for online grants that had to revoke borrowed batch shares first. */
  preemptingMs: number[];
  /** The rest: grants and refusals that revoked nothing. */
  plainMs: number[];
  granted: number;
  refused: number;
  /** Refusals because a device's memory was full (409) while its share was not. */
  refusedMemory: number;
  releases: number;
  checks: number;
  violations: string[];
}

/** Epoch ms with sub-ms precision, comparable across processes on one machine. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

async function main(): Promise<void> {
  const cfg = JSON.parse(process.env.SCHED_BENCH_WORKER ?? '{}') as { url: string; name: string };
  const ds = await new DataSource(buildDataSourceOptions({ url: cfg.url, poolSize: 3, applicationName: 'sched-bench' })).initialize();
  const s = await new Scheduler(
    ds,
    defaultSchedulerOptions({ nodeName: cfg.name, agentEnabled: false, discoverCpu: false, discoverGpus: false, preemptGraceMs: 2_000 }),
    { probe: new StaticGpuProbe(''), databaseUrl: cfg.url },
  ).start();
  const send = (m: object): void => void process.send?.(m);

  async function race(c: Extract<RaceCommand, { cmd: 'race' }>): Promise<RaceResult> {
    const rand = seededRandom(c.seed);
    const shares = [0.1, 0.125, 0.25, 0.3, 0.5];
    // Up to 32 GiB of an 80 GB device's 81 559 MiB: memory binds about as often as share.
    const memoriesGiB = [0, 8, 16, 24, 32];
    const held: Lease[] = [];
    const r: RaceResult = { latenciesMs: [], preemptingMs: [], plainMs: [], granted: 0, refused: 0, refusedMemory: 0, releases: 0, checks: 0, violations: [] };
    const until = Date.now() + c.durationMs;
    while (Date.now() < until) {
      if (held.length > 0 && (rand() < 0.45 || held.length >= 6)) {
        await held.splice(Math.floor(rand() * held.length), 1)[0]!.release();
        r.releases++;
      } else {
        const t0 = performance.now();
        let preempted = false;
        try {
          const lease = await s.allocations.allocate({
            kind: rand() < 0.3 ? 'online' : 'batch',
            share: shares[Math.floor(rand() * shares.length)]!,
            memoryMiB: memoriesGiB[Math.floor(rand() * memoriesGiB.length)]! * 1024,
            devices: c.devices,
          });
          held.push(lease);
          preempted = lease.grant.preempted > 0;
          // A well-behaved batch holder: a revoked borrowed share is given back at once.
          lease.onRevoke(() => {
            const i = held.indexOf(lease);
            if (i >= 0) held.splice(i, 1);
            void lease.release().then(() => r.releases++);
          });
          r.granted++;
        } catch (e) {
          if (!(e instanceof DomainException)) throw e;
          r.refused++;
          if (e.code === ErrorCode.Conflict) r.refusedMemory++;
        }
        const dt = performance.now() - t0;
        r.latenciesMs.push(dt);
        (preempted ? r.preemptingMs : r.plainMs).push(dt);
      }
      if (c.checkInvariant) {
        r.checks++;
        r.violations.push(...(await s.ledger.violations()));
      }
    }
    await Promise.all(held.map((l) => l.release()));
    return r;
  }

  /** Holds the device's batch partition and borrows the idle online half; yields at once when revoked. */
  async function borrow(device: string): Promise<void> {
    const owned = await s.allocations.allocate({ kind: 'batch', share: 0.5, devices: [device] });
    const lent = await s.allocations.allocate({ kind: 'batch', share: 0.5, devices: [device] });
    if (!lent.grant.borrowed) throw new Error('expected a borrowed share');
    lent.onRevoke(() => {
      const heardAt = nowMs();
      void lent.release().then(async () => {
        send({ event: 'released', heardAt, releasedAt: nowMs() });
        await owned.release();
      });
    });
  }

  process.on('message', (m: RaceCommand) => {
    void (async () => {
      try {
        if (m.cmd === 'race') send({ id: m.id, ok: true, value: await race(m) });
        else if (m.cmd === 'borrow') {
          await borrow(m.device);
          send({ id: m.id, ok: true, value: null });
        } else if (m.cmd === 'stop') {
          await s.stop();
          await ds.destroy();
          send({ id: m.id, ok: true, value: null });
          process.exit(0);
        }
      } catch (e) {
        send({ id: m.id, ok: false, error: e instanceof Error ? e.message : String(e) });
      }
    })();
  });
  send({ ready: true });
}

main().catch((e: unknown) => {
  process.stderr.write(`scheduler bench worker failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
