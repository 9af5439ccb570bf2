/**
 * A scheduler node in its own process, for multi-process tests: compiled by scheduler-children.ts,
 * forked with IPC. Config comes in SCHED_WORKER (JSON); commands arrive as IPC messages.
 */
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { DomainException, ErrorCode } from '@tandem/shared';
import { buildDataSourceOptions } from '@tandem/persistence';
import { defaultSchedulerOptions, Scheduler, StaticGpuProbe, type AllocationRequest, type Lease, type SchedulerOptions } from '@tandem/scheduler';
import { seededRandom } from '../../scripts/fuzz/prng';

interface WorkerConfig {
  url: string;
  options: Partial<SchedulerOptions>;
}

export type WorkerCommand =
  | { id: number; cmd: 'allocate'; req: AllocationRequest }
  | { id: number; cmd: 'race'; iterations: number; devices: string[]; seed: number; memoriesMiB?: number[] }
  | { id: number; cmd: 'held' }
  | { id: number; cmd: 'stop' };

async function main(): Promise<void> {
  const cfg = JSON.parse(process.env.SCHED_WORKER ?? '{}') as WorkerConfig;
  const ds = await new DataSource(buildDataSourceOptions({ url: cfg.url, poolSize: 4, applicationName: 'sched-worker' })).initialize();
  const s = await new Scheduler(ds, defaultSchedulerOptions({ discoverCpu: false, discoverGpus: false, ...cfg.options }), {
    probe: new StaticGpuProbe(''),
    databaseUrl: cfg.url,
  }).start();
  const held: Lease[] = [];
  const reply = (m: object): void => void process.send?.(m);

  async function race(iterations: number, devices: string[], seed: number, memoriesMiB = [0, 1024, 2048, 3072]): Promise<object> {
    const rand = seededRandom(seed);
    const shares = [0.1, 0.2, 0.25, 0.3, 0.5];
    const mine: Lease[] = [];
    let granted = 0;
    let refused = 0;
    let refusedMemory = 0;
    const violations: string[] = [];
    for (let i = 0; i < iterations; i++) {
      if (mine.length > 0 && (rand() < 0.45 || mine.length > 4)) {
        await mine.splice(Math.floor(rand() * mine.length), 1)[0]!.release();
      } else {
        try {
          mine.push(
            await s.allocations.allocate({
              kind: rand() < 0.3 ? 'online' : 'batch',
              share: shares[Math.floor(rand() * shares.length)]!,
              memoryMiB: memoriesMiB[Math.floor(rand() * memoriesMiB.length)]!,
              devices,
            }),
          );
          granted++;
        } catch (e) {
          if (!(e instanceof DomainException)) throw e;
          refused++;
          if (e.code === ErrorCode.Conflict) refusedMemory++;
        }
      }
      // The invariant after every step, read from the ledger itself.
      violations.push(...(await s.ledger.violations()));
    }
    await Promise.all(mine.map((l) => l.release()));
    return { granted, refused, refusedMemory, violations };
  }

  process.on('message', (m: WorkerCommand) => {
    void (async () => {
      try {
        if (m.cmd === 'allocate') {
          const lease = await s.allocations.allocate(m.req);
          held.push(lease);
          reply({ id: m.id, ok: true, value: lease.grant });
        } else if (m.cmd === 'race') {
          reply({ id: m.id, ok: true, value: await race(m.iterations, m.devices, m.seed, m.memoriesMiB) });
        } else if (m.cmd === 'held') {
          reply({ id: m.id, ok: true, value: held.map((l) => ({ id: l.id, state: l.state })) });
        } else if (m.cmd === 'stop') {
          await s.stop();
          await ds.destroy();
          reply({ id: m.id, ok: true, value: null });
          process.exit(0);
        }
      } catch (e) {
        reply({ id: m.id, ok: false, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
      }
    })();
  });
  reply({ ready: true, pid: process.pid });
}

main().catch((e: unknown) => {
  process.stderr.write(`scheduler worker failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
