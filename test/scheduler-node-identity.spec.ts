import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataSourceOptions } from '@tandem/persistence';
import type { DiscoveredDevice } from '@tandem/scheduler';
import { InventoryRepository } from '../libs/scheduler/src/ledger/inventory.repository';
import { createTestDatabase, type TestDatabase } from './support/test-env';

// docker-compose runs the gateway, the batch API and the workers of one host as containers that
// share one SCHEDULER_NODE_NAME; every one of them is pid 1 and discovers the same CPU.
const cpu = (cores: number): DiscoveredDevice => ({
  localId: 'cpu', kind: 'cpu', source: 'discovered', model: 'Test CPU', gpuIndex: null, gpuUuid: null, migMode: null, cores, memoryMiB: 4096,
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
});
