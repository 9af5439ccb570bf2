import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceView } from '@tandem/scheduler';
import { ModelRunner, parseModelConfig } from '@tandem/inference';
import type { RunningBatch } from '../apps/batch/src/bootstrap';
import type { RunningGateway } from '../apps/gateway/src/bootstrap';
import { InferenceService } from '../apps/gateway/src/inference/inference.service';
import { buildBurnModel } from '../scripts/generate-models';
import { batchEnv, deleteQueueKeys, getBatch, postJson, startTestBatch, waitUntil } from './support/batch-harness';
import { simulatedGpuEnv, startSimulatedGpuGateway, useFakeNvidiaSmi } from './support/simulated-gpu-stack';
import { createTestDatabase, type TestDatabase } from './support/test-env';

/**
 * Co-location on (simulated) GPUs: the gateway and a batch worker on a node that the fake
 * nvidia-smi describes (8 × H100 80 GB, MIG on GPU 0), sessions on simulated CUDA
 * (TANDEM_SIMULATED_GPU: real outputs from the CPU, device memory held, 20 ms per batch). Only
 * GPU 1 is left schedulable. An idle GPU's online share and memory are borrowed by a batch unit
 * (holding the model's declared memory, not BATCH_GPU_MEMORY_MIB); loading a GPU model's replica
 * (online demand) revokes it; the unit gives it back at the end of its model batch and the
 * replica is placed there with its memory. (MIG: hybrid-gpu-mig.e2e.spec.ts.)
 */
const FALLBACK_MIB = 20_000; // BATCH_GPU_MEMORY_MIB: for models that declare no memory (burn declares it)
const REPLICA_MIB = 70_000; // burn's device.memory_mib, for a replica and a batch unit alike: two do not fit an H100's 81 559
const config = (replicas: number): object => ({ max_batch_size: 16, replicas, device: { kind: 'gpu', memory_mib: REPLICA_MIB } });

describe('hybrid co-location on simulated GPUs: batch borrows an idle GPU, online load takes it back', () => {
  let db: TestDatabase;
  let repo: string;
  let gw: RunningGateway;
  let batch: RunningBatch | undefined;
  let prefix: string;
  let restorePath: (() => void) | undefined;
  const node = `hgpu-${randomBytes(3).toString('hex')}`;

  const gpu1 = async (): Promise<DeviceView> => (await (await fetch(`${gw.url}/admin/api/devices/${node}/gpu1`)).json()) as DeviceView;
  const metric = async (url: string, re: RegExp): Promise<number> => Number(re.exec(await (await fetch(`${url}/metrics`)).text())?.[1] ?? 0);

  beforeAll(async () => {
    restorePath = useFakeNvidiaSmi();
    db = await createTestDatabase();
    repo = mkdtempSync(join(tmpdir(), 'tandem-hybrid-gpu-'));
    mkdirSync(join(repo, 'burn', '1'), { recursive: true });
    writeFileSync(join(repo, 'burn', '1', 'model.onnx'), buildBurnModel(8, 256));
    // No replica at first: the GPU stays idle (borrowable) until online asks for it.
    writeFileSync(join(repo, 'burn', 'config.json'), JSON.stringify(config(0)));
    const shared = simulatedGpuEnv(node);
    ({ gw, prefix } = await startSimulatedGpuGateway(db.url, repo, shared));
    // Only GPU 1 stays schedulable (the MIG instances and the other whole GPUs are drained).
    const all = ((await (await fetch(`${gw.url}/admin/api/devices?kind=gpu`)).json()) as { devices: DeviceView[] }).devices.filter((d) => d.node === node);
    expect(all.map((d) => d.id).sort()).toEqual(
      [...['gpu0-mig0', 'gpu0-mig1', 'gpu0-mig2'], ...[1, 2, 3, 4, 5, 6, 7].map((i) => `gpu${i}`)].map((l) => `${node}/${l}`).sort(),
    );
    for (const d of all) if (d.id !== `${node}/gpu1`) expect((await fetch(`${gw.url}/admin/api/devices/${d.id}/drain`, { method: 'POST' })).status).toBe(200);
    batch = await startTestBatch(
      batchEnv(db.url, prefix, {
        ...shared,
        MODEL_REPOSITORY: repo,
        BATCH_DEVICE_KIND: 'gpu',
        BATCH_INFER_THREADS: '1',
        BATCH_GPU_MEMORY_MIB: String(FALLBACK_MIB),
        BATCH_CONCURRENCY: '1',
      }),
    );
  });

  afterAll(async () => {
    await batch?.app.close();
    await gw?.app.close();
    await deleteQueueKeys(prefix);
    await db?.drop();
    rmSync(repo, { recursive: true, force: true });
    restorePath?.();
  });

  it('borrows the idle GPU with its memory, yields it to online load at a safe point, and the replica is placed there', async () => {
    const items = Array.from({ length: 20_000 }, (_, i) => Array.from({ length: 16 }, (_, j) => ((i * 16 + j) % 89) / 89 - 0.5));
    const sub = await postJson(`${batch!.url}/v1/batches`, { task: 'infer', model: 'burn', reducer: 'count', chunkSize: 64, items });
    expect(sub.status).toBe(201);
    const id = sub.body.id as string;
    try {
      // 1. Online idle: the batch unit borrows GPU 1's online share and holds its memory there.
      await waitUntil(async () => (await gpu1()).used.borrowed === 1, 'the batch borrowing the idle GPU', 20_000);
      expect((await gpu1()).used).toMatchObject({ online: 0, batch: 1, borrowed: 1, memoryMiB: REPLICA_MIB, memoryFreeMiB: 81_559 - REPLICA_MIB });
      await waitUntil(async () => (await getBatch(batch!.url, id)).counts.itemsDone > 0, 'batch items done on the simulated GPU', 20_000);

      // 2. Online demand: the model is loaded with one GPU replica (70 000 MiB); the borrowed unit is
      // revoked, released at the end of its model batch, and the replica placed on GPU 1.
      writeFileSync(join(repo, 'burn', 'config.json'), JSON.stringify(config(1)));
      const load = await postJson(`${gw.url}/v2/repository/models/burn/load`, {});
      expect(load.status).toBe(200);
      const dev = await gpu1();
      expect(dev.used).toMatchObject({ online: 1, borrowed: 0, memoryMiB: REPLICA_MIB });
      const x = Array.from({ length: 16 }, (_, j) => j / 16 - 0.5);
      const replies = await Promise.all(
        Array.from({ length: 4 }, () => postJson(`${gw.url}/v2/models/burn/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: x }] })),
      );
      expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200]);

      // Real outputs: the same as the model run directly on the CPU.
      const cpu = await ModelRunner.load(join(repo, 'burn', '1', 'model.onnx'), parseModelConfig({ max_batch_size: 16 }, 'burn'));
      const want = Array.from((await cpu.run([{ name: 'x', datatype: 'FP32', shape: [1, 16], data: Float32Array.from(x) }]))[0]!.data as Float32Array);
      await cpu.release();
      const got = (replies[0]!.body.outputs as { data: number[] }[])[0]!.data;
      expect(got.map((v) => Math.fround(v))).toEqual(want.map((v) => expect.closeTo(v, 5)));

      // The replica runs on exactly the allocated device and its memory figure is the declared one.
      const meta = (await (await fetch(`${gw.url}/v2/models/burn`)).json()) as { device?: unknown };
      expect(meta.device).toEqual({ kind: 'gpu', memory_mib: REPLICA_MIB, memory_source: 'declared' });
      const allocs = (
        (await (await fetch(`${gw.url}/admin/api/allocations`)).json()) as {
          allocations: { kind: string; deviceId: string; memoryMiB: number; holder: string }[];
        }
      ).allocations;
      expect(allocs.filter((a) => a.kind === 'online')).toMatchObject([
        { deviceId: `${node}/gpu1`, memoryMiB: REPLICA_MIB, holder: expect.stringMatching(/replica:burn:1$/) },
      ]);
      const replicas = gw.app.get(InferenceService)['engine'].instance('burn').pool.list();
      expect(replicas.map((r) => r.lease.placement)).toEqual([{ kind: 'cuda', deviceId: 1, uuid: dev.gpuUuid, memoryMiB: REPLICA_MIB }]);

      // The batch saw the revocation and released at a safe point (the end of a 20 ms model batch), well inside the grace.
      expect(await metric(batch!.url, /tandem_hybrid_batch_revocations_total (\d+)/)).toBeGreaterThanOrEqual(1);
      const count = await metric(batch!.url, /tandem_hybrid_revoke_release_seconds_count (\d+)/);
      expect(count).toBeGreaterThanOrEqual(1);
      expect(await metric(batch!.url, /tandem_hybrid_revoke_release_seconds_bucket\{le="1"\} (\d+)/)).toBe(count);
      // While the replica holds 70 000 MiB the unit's 70 000 do not fit beside it: the batch waits, it does not over-commit.
      const done = (await getBatch(batch!.url, id)).counts.itemsDone;
      await new Promise((r) => setTimeout(r, 500));
      expect((await gpu1()).used).toMatchObject({ borrowed: 0, memoryMiB: REPLICA_MIB });
      expect((await getBatch(batch!.url, id)).counts.itemsDone).toBe(done);
    } finally {
      await postJson(`${batch!.url}/v1/batches/${id}/cancel`, {});
    }
  });
});
