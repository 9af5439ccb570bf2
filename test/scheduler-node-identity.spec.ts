import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataSourceOptions } from '@tandem/persistence';
import { discoverDevices, StaticGpuProbe, type DiscoveredDevice } from '@tandem/scheduler';
import { InventoryRepository } from '../libs/scheduler/src/ledger/inventory.repository';
import { createTestDatabase, type TestDatabase } from './support/test-env';

const FAKE = join(process.cwd(), 'test/fixtures/fake-nvidia-smi/nvidia-smi');
const QUERY = ['--query-gpu=index,uuid,name,memory.total,memory.used,utilization.gpu,mig.mode.current', '--format=csv,noheader,nounits'];
/** What the fake nvidia-smi prints in a mode, as a static probe. */
const fakeProbe = (mode: string): StaticGpuProbe => {
  const run = (args: string[]): string => execFileSync(FAKE, args, { env: { ...process.env, FAKE_NVIDIA_SMI_MODE: mode } }).toString();
  return new StaticGpuProbe(run(QUERY), run(['-L']));
};

// docker-compose runs the gateway, the batch API and the workers of one host as containers that
// share one SCHEDULER_NODE_NAME; every one of them is pid 1 and discovers the same CPU.
const cpu = (cores: number): DiscoveredDevice => ({
  localId: 'cpu',
  kind: 'cpu',
  source: 'discovered',
  model: 'Test CPU',
  gpuIndex: null,
  gpuUuid: null,
  migMode: null,
  parentGpuUuid: null,
  migProfile: null,
  migDeviceIndex: null,
  computeFraction: null,
  cores,
  memoryMiB: 4096,
});
const partition = { onlineMilli: 1000, batchMilli: 0, batchMayBorrow: true };

let db: TestDatabase;
let ds: DataSource;
let inv: InventoryRepository;

beforeAll(async () => {
  db = await createTestDatabase();
  ds = await new DataSource(buildDataSourceOptions({ url: db.url, poolSize: 2, applicationName: 'node-identity-test' })).initialize();
  inv = new InventoryRepository(ds);
});
afterAll(async () => {
  await ds?.destroy();
  await db?.drop();
});

describe('several processes under one node name (containers of one host)', () => {
  it('register one node and one CPU device, keep an admin partition, and only the last registrant marks the node left', async () => {
    await inv.register({ name: 'host-a', hostname: 'gateway-ctr', pid: 1, info: {}, devices: [cpu(8)], defaultPartition: partition });
    await ds.query(`UPDATE sched_device SET online_milli = 600, batch_milli = 400 WHERE id = 'host-a/cpu'`); // an admin's choice
    await inv.register({ name: 'host-a', hostname: 'worker-ctr-1', pid: 1, info: {}, devices: [cpu(8)], defaultPartition: partition });
    await inv.register({ name: 'host-a', hostname: 'worker-ctr-2', pid: 1, info: {}, devices: [cpu(8)], defaultPartition: partition });

    expect((await inv.listNodes()).map((n) => [n.name, n.status])).toEqual([['host-a', 'alive']]);
    const devices = await inv.listDevices();
    expect(devices.map((d) => [d.id, d.cores])).toEqual([['host-a/cpu', 8]]);
    expect(devices[0]!.partition).toMatchObject({ online: 0.6, batch: 0.4 });

    // The gateway container stops (pid 1 too): the workers still run, the node stays alive.
    await inv.markLeft('host-a', 1, 'gateway-ctr');
    expect((await inv.listNodes())[0]!.status).toBe('alive');
    // The last registrant leaves: the node is `left` until a remaining process heartbeats.
    await inv.markLeft('host-a', 1, 'worker-ctr-2');
    expect((await inv.listNodes())[0]!.status).toBe('left');
    expect(await inv.heartbeat('host-a')).toBe(true);
    expect((await inv.listNodes())[0]!.status).toBe('alive');
  });

  it('a GPU that turns MIG on: its whole-GPU row is retired (drained while held), its MIG devices registered; and back', async () => {
    const register = async (mode: string): Promise<void> => {
      const found = await discoverDevices({ discoverGpus: true, discoverCpu: false, declared: [] }, fakeProbe(mode));
      await inv.register({
        name: 'gpu-host',
        hostname: 'h',
        pid: 2,
        info: {},
        devices: found.devices,
        probedGpuUuids: found.probedGpuUuids,
        defaultPartition: partition,
      });
    };
    const gpuRows = async (): Promise<[string, boolean][]> =>
      (await inv.listDevices({ node: 'gpu-host' })).map((d) => [d.localId, d.drained] as [string, boolean]);
    await register('no-mig');
    expect((await gpuRows()).map(([id]) => id)).toEqual(['gpu0', 'gpu1', 'gpu2', 'gpu3', 'gpu4', 'gpu5', 'gpu6', 'gpu7']);
    // Something still holds the whole GPU 0 when MIG is turned on.
    await ds.query(
      `INSERT INTO sched_allocation (id, group_id, device_id, kind, state, share_milli, memory_mib, holder, lease_expires_at)
       VALUES (gen_random_uuid(), gen_random_uuid(), 'gpu-host/gpu0', 'online', 'active', 1000, 0, 'old-replica', now() + interval '1 hour')`,
    );
    await register('ok');
    const rows = await gpuRows();
    expect(rows.slice(0, 4)).toEqual([
      ['gpu0', true],
      ['gpu0-mig0', false],
      ['gpu0-mig1', false],
      ['gpu0-mig2', false],
    ]);
    const mig = (await inv.listDevices({ node: 'gpu-host' })).find((d) => d.localId === 'gpu0-mig1')!;
    expect(mig).toMatchObject({ id: 'gpu-host/gpu0-mig1', migProfile: '2g.20gb', migDeviceIndex: 1, memoryMiB: 19456, computeFraction: 0.286 });
    expect(mig.parentGpuUuid).toMatch(/^GPU-/);
    expect(mig.gpuUuid).toMatch(/^MIG-/);
    // Released: the next registration removes the superseded row for good.
    await ds.query(`DELETE FROM sched_allocation WHERE device_id = 'gpu-host/gpu0'`);
    await register('ok');
    expect((await gpuRows()).map(([id]) => id).slice(0, 3)).toEqual(['gpu0-mig0', 'gpu0-mig1', 'gpu0-mig2']);
    // MIG off again: the MIG rows go, the whole GPU comes back schedulable.
    await register('no-mig');
    expect(await gpuRows()).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => [`gpu${i}`, false]));
  });
});
