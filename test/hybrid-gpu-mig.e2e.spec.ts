import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AllocationView, DeviceView } from '@tandem/scheduler';
import type { RunningBatch } from '../apps/batch/src/bootstrap';
import type { RunningGateway } from '../apps/gateway/src/bootstrap';
import { buildBurnModel } from '../scripts/generate-models';
import { batchEnv, deleteQueueKeys, getBatch, postJson, startTestBatch, waitUntil } from './support/batch-harness';
import { simulatedGpuEnv, startSimulatedGpuGateway, useFakeNvidiaSmi } from './support/simulated-gpu-stack';
import { createTestDatabase, type TestDatabase } from './support/test-env';

/**
 * MIG on the fake 8×H100 node (MIG on GPU 0: 3g.40gb, 2g.20gb, 2g.20gb), gateway and batch
 * worker in this process, sessions on simulated CUDA. The gateway's replicas are threads of its
 * process, which sees every GPU: they land on a whole GPU, never on a MIG instance (CUDA would
 * not show the instance to that process), although pack placement ranks gpu0-mig0 first. A batch
 * GPU unit borrows the idle MIG instance with its model's declared memory and runs in a unit
 * process whose CUDA_VISIBLE_DEVICES is that instance's UUID; online demand on the instance (a
 * reservation, as a process pinned to it would make) revokes it, and the unit's process has
 * ended by the time the online allocation is granted.
 */
const BATCH_MODEL_MIB = 9_000; // burn's device.memory_mib: what the batch unit must hold
const FALLBACK_MIB = 20_000; // BATCH_GPU_MEMORY_MIB: only for models that declare nothing
const SERVE_MIB = 30_000;
const MIG0_MIB = 38_912; // 3g.40gb: 40 GiB less 5 %
const ONLINE_ON_MIG_MIB = 35_000; // with the unit's 9 000 more than the instance has: the unit must go

const cfg = (replicas: number, memory: number): string => JSON.stringify({ max_batch_size: 16, replicas, device: { kind: 'gpu', memory_mib: memory } });

/** This process's children whose environment says CUDA_VISIBLE_DEVICES=`visible` (unit processes). */
function childrenPinnedTo(visible: string): { pid: number; env: Record<string, string> }[] {
  const out: { pid: number; env: Record<string, string> }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const ppid = /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${name}/status`, 'utf8'))?.[1];
      if (Number(ppid) !== process.pid) continue;
      const env = Object.fromEntries(
        readFileSync(`/proc/${name}/environ`, 'utf8')
          .split('\0')
          .filter((kv) => kv.includes('='))
          .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      );
      if (env.CUDA_VISIBLE_DEVICES === visible) out.push({ pid: Number(name), env });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const alive = (pid: number): boolean => {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
};

describe('MIG on simulated GPUs: replicas on whole GPUs only, a batch unit process pinned to a MIG instance', () => {
  let db: TestDatabase;
  let repo: string;
  let gw: RunningGateway;
  let batch: RunningBatch | undefined;
  let prefix: string;
  let restorePath: (() => void) | undefined;
  const node = `hmig-${randomBytes(3).toString('hex')}`;

  const device = async (local: string): Promise<DeviceView> => (await (await fetch(`${gw.url}/admin/api/devices/${node}/${local}`)).json()) as DeviceView;
  const allocations = async (): Promise<AllocationView[]> =>
    ((await (await fetch(`${gw.url}/admin/api/allocations`)).json()) as { allocations: AllocationView[] }).allocations.filter((a) =>
      a.deviceId.startsWith(`${node}/`),
    );
  const metric = async (url: string, re: RegExp): Promise<number> => Number(re.exec(await (await fetch(`${url}/metrics`)).text())?.[1] ?? 0);

  beforeAll(async () => {
    restorePath = useFakeNvidiaSmi();
    db = await createTestDatabase();
    repo = mkdtempSync(join(tmpdir(), 'tandem-hybrid-mig-'));
    for (const [name, conf] of [
      ['serve', cfg(1, SERVE_MIB)],
      ['burn', cfg(0, BATCH_MODEL_MIB)],
    ] as const) {
      mkdirSync(join(repo, name, '1'), { recursive: true });
      writeFileSync(join(repo, name, '1', 'model.onnx'), buildBurnModel(8, 256));
      writeFileSync(join(repo, name, 'config.json'), conf);
    }
    const shared = simulatedGpuEnv(node, { SCHEDULER_PLACEMENT: 'pack' });
    // `serve` loads one replica at start, when every GPU device of the node is free.
    ({ gw, prefix } = await startSimulatedGpuGateway(db.url, repo, shared));
  });

  afterAll(async () => {
    await batch?.app.close();
    await gw?.app.close();
    await deleteQueueKeys(prefix);
    await db?.drop();
    rmSync(repo, { recursive: true, force: true });
    restorePath?.();
  });

  it("places the gateway's replica on a whole GPU although pack ranks the MIG instance first", async () => {
    const online = (await allocations()).filter((a) => a.kind === 'online');
    // Pack with every device free ranks by device id: gpu0-mig0 would come first.
    expect(online).toMatchObject([{ deviceId: `${node}/gpu1`, memoryMiB: SERVE_MIB, holder: expect.stringMatching(/replica:serve:1$/) }]);
    const x = Array.from({ length: 16 }, (_, j) => j / 16 - 0.5);
    const r = await postJson(`${gw.url}/v2/models/serve/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: x }] });
    expect(r.status).toBe(200);
  });

  it("borrows the idle MIG instance in a unit process pinned to its UUID, with the model's declared memory; online demand there revokes it", async () => {
    // Only gpu0-mig0 (idle) and gpu1 (the replica's, full) stay schedulable.
    const all = ((await (await fetch(`${gw.url}/admin/api/devices?kind=gpu`)).json()) as { devices: DeviceView[] }).devices.filter((d) => d.node === node);
    for (const d of all)
      if (d.id !== `${node}/gpu0-mig0` && d.id !== `${node}/gpu1`)
        expect((await fetch(`${gw.url}/admin/api/devices/${d.id}/drain`, { method: 'POST' })).status).toBe(200);
    const mig = await device('gpu0-mig0');
    expect(mig).toMatchObject({ migProfile: '3g.40gb', memoryMiB: MIG0_MIB, gpuUuid: expect.stringMatching(/^MIG-/) });

    batch = await startTestBatch(
      batchEnv(db.url, prefix, {
        SCHEDULER_NODE_NAME: node,
        SCHEDULER_DISCOVER_CPU: 'false',
        SCHEDULER_DEFAULT_ONLINE_SHARE: '1',
        SCHEDULER_DEFAULT_BATCH_SHARE: '0',
        TANDEM_SIMULATED_GPU: 'true',
        TANDEM_SIMULATED_GPU_MS_PER_BATCH: '20',
        MODEL_REPOSITORY: repo,
        BATCH_DEVICE_KIND: 'gpu',
        BATCH_INFER_THREADS: '1',
        BATCH_GPU_MEMORY_MIB: String(FALLBACK_MIB),
        BATCH_CONCURRENCY: '1',
      }),
    );
    const items = Array.from({ length: 20_000 }, (_, i) => Array.from({ length: 16 }, (_, j) => ((i * 16 + j) % 89) / 89 - 0.5));
    const sub = await postJson(`${batch.url}/v1/batches`, { task: 'infer', model: 'burn', reducer: 'count', chunkSize: 64, items });
    expect(sub.status).toBe(201);
    const id = sub.body.id as string;
    let reservation: string | undefined;
    try {
      await waitUntil(async () => (await device('gpu0-mig0')).used.borrowed === 1, 'the batch borrowing the idle MIG instance', 30_000);
      expect((await device('gpu0-mig0')).used).toMatchObject({
        online: 0,
        batch: 1,
        borrowed: 1,
        memoryMiB: BATCH_MODEL_MIB,
        memoryFreeMiB: MIG0_MIB - BATCH_MODEL_MIB,
      });
      expect((await allocations()).filter((a) => a.kind === 'batch')).toMatchObject([
        { deviceId: `${node}/gpu0-mig0`, memoryMiB: BATCH_MODEL_MIB, borrowed: true },
      ]);
      await waitUntil(async () => (await getBatch(batch!.url, id)).counts.itemsDone > 0, 'batch items done on the MIG instance', 30_000);

      // The unit runs in a process of its own that sees only the MIG instance.
      const units = childrenPinnedTo(mig.gpuUuid!);
      expect(units).toHaveLength(1);
      expect(units[0]!.env.CUDA_DEVICE_ORDER).toBe('PCI_BUS_ID');
      const unitPid = units[0]!.pid;

      // Online demand on the instance: it needs share and memory the borrowed unit holds.
      const grant = await postJson(`${gw.url}/admin/api/allocations`, {
        kind: 'online',
        share: 1,
        memoryMiB: ONLINE_ON_MIG_MIB,
        devices: [`${node}/gpu0-mig0`],
        holder: 'pinned-to-mig0',
      });
      expect(grant.status).toBe(201);
      expect(grant.body).toMatchObject({ preempted: 1, cudaVisibleDevices: mig.gpuUuid });
      reservation = grant.body.groupId as string;
      // Granted only after the unit let go, and it let go only after its process ended.
      expect(alive(unitPid)).toBe(false);
      expect((await device('gpu0-mig0')).used).toMatchObject({ online: 1, batch: 0, borrowed: 0, memoryMiB: ONLINE_ON_MIG_MIB });
      expect(await metric(batch.url, /tandem_hybrid_batch_revocations_total (\d+)/)).toBeGreaterThanOrEqual(1);

      // Nothing left for the batch: it waits, it does not over-commit, and no unit process is pinned there.
      const done = (await getBatch(batch.url, id)).counts.itemsDone;
      await new Promise((r) => setTimeout(r, 500));
      expect((await allocations()).filter((a) => a.kind === 'batch')).toEqual([]);
      expect((await getBatch(batch.url, id)).counts.itemsDone).toBe(done);
      expect(childrenPinnedTo(mig.gpuUuid!)).toEqual([]);
      // The gateway's replica stayed where it was.
      expect((await allocations()).filter((a) => a.kind === 'online' && a.holder.endsWith('replica:serve:1')).map((a) => a.deviceId)).toEqual([`${node}/gpu1`]);
    } finally {
      await postJson(`${batch.url}/v1/batches/${id}/cancel`, {});
      if (reservation) await fetch(`${gw.url}/admin/api/allocations/${reservation}`, { method: 'DELETE' });
    }
  });
});
