import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LocalCapacityProvider } from '../capacity-provider';
import type { CapacityProvider, DeviceLease, ReplicaRequest } from '../placement';
import { InferenceEngine } from '../inference-engine';
import { ModelRepository } from '../model-repository';
import { configureGpuProcess } from './gpu-process';

// GPU models on the engine, with real onnxruntime: fail loudly without a GPU or without the CUDA
// provider, fall back to the CPU only when told, and on simulated CUDA hold (and measure) memory.

const CLS = realpathSync(resolve(process.cwd(), 'models/ppocr_cls/1/model.onnx'));
const BASE = { max_batch_size: 4, warmup: { batch_sizes: [4] }, inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, 48, 192] }] };
const CUDA_EP_INSTALLED = existsSync(join(dirname(require.resolve('onnxruntime-node')), '..', 'bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so'));

/** Local provider that records what was asked and what is still held. */
class Recording implements CapacityProvider {
  readonly asked: ReplicaRequest[] = [];
  constructor(private readonly inner: LocalCapacityProvider) {}
  acquire(req: ReplicaRequest): Promise<DeviceLease[]> {
    this.asked.push(req);
    return this.inner.acquire(req);
  }
  release(l: DeviceLease): void {
    this.inner.release(l);
  }
  get held(): number {
    return this.inner.held;
  }
}

describe('GPU models on the engine', () => {
  let dir: string;
  const engines: InferenceEngine[] = [];
  const model = (name: string, device: Record<string, unknown>, replicas = 1): void => {
    mkdirSync(join(dir, name, '1'), { recursive: true });
    symlinkSync(CLS, join(dir, name, '1', 'model.onnx'));
    writeFileSync(join(dir, name, 'config.json'), JSON.stringify({ ...BASE, replicas, device: { kind: 'gpu', ...device } }));
  };
  const engine = (capacity: CapacityProvider): InferenceEngine => {
    const e = new InferenceEngine({ repository: new ModelRepository(dir), capacity, defaultTimeoutMs: 10_000 });
    engines.push(e);
    return e;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-gpu-models-'));
    model('plain', {});
    model('fallback', { fallback: 'cpu' });
    model('declared', { memory_mib: 300 });
    model('small', { memory_mib: 100 });
    model('two', {}, 2);
  });
  afterEach(async () => {
    await Promise.all(engines.splice(0).map((e) => e.close()));
    configureGpuProcess({});
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('fails the load of a GPU model when no GPU can be allocated, with the reason in state, index and readiness; holds nothing', async () => {
    const cap = new Recording(new LocalCapacityProvider({ cpuThreads: 2 }));
    const e = engine(cap);
    await expect(e.load('plain')).rejects.toThrow(
      'plain v1 needs a GPU (device.kind "gpu") and no GPU allocation is available on this node; set device.fallback "cpu" in its config.json to serve it on the CPU instead',
    );
    expect(e.states()).toEqual([{ model: 'plain', version: '1', state: 'failed', error: expect.stringMatching(/needs a GPU/) }]);
    expect(e.index().find((x) => x.name === 'plain')).toMatchObject({
      state: 'UNAVAILABLE',
      reason: expect.stringMatching(/no GPU allocation is available/),
      device: { kind: 'gpu', memory_mib: null },
    });
    expect(e.readiness('plain')).toEqual({ ready: false, reason: expect.stringMatching(/needs a GPU/) });
    expect(() => e.metadata('plain')).toThrow(/failed to load: plain v1 needs a GPU/);
    expect(cap.asked.map((r) => r.device.kind)).toEqual(['gpu']);
    expect(cap.held).toBe(0);
  });

  it('serves a GPU model on the CPU only when its config says fallback "cpu"', async () => {
    const cap = new Recording(new LocalCapacityProvider({ cpuThreads: 2 }));
    const inst = await engine(cap).load('fallback');
    expect(cap.asked.map((r) => r.device.kind)).toEqual(['gpu', 'cpu']);
    expect(inst.pool.list().map((r) => r.lease.placement)).toEqual([{ kind: 'cpu', intraOpThreads: 1 }]);
    await inst.scaleTo(3); // autoscaling: still no GPU, so CPU again
    expect(cap.asked.slice(2).map((r) => [r.device.kind, r.count])).toEqual([
      ['gpu', 1],
      ['cpu', 2],
    ]);
    expect(inst.replicas).toBe(3);
  });

  it.skipIf(CUDA_EP_INSTALLED)("fails the load when onnxruntime's CUDA provider is not installed, naming the install command; holds nothing", async () => {
    const cap = new Recording(new LocalCapacityProvider({ cpuThreads: 2, gpuDeviceIds: [0] }));
    const e = engine(cap);
    await expect(e.load('plain')).rejects.toThrow(
      /onnxruntime's CUDA execution provider is not available \(.*Failed to load shared library.*\); install onnxruntime-node's CUDA 12 provider: `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node --allow-scripts=onnxruntime-node`/,
    );
    expect(e.index().find((x) => x.name === 'plain')!.reason).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node/);
    expect(cap.held).toBe(0);
  });

  it('simulated CUDA: a model that needs more memory than its allocation fails with CUDA out of memory; holds nothing', async () => {
    configureGpuProcess({ simulated: { msPerBatch: 1, baseMiB: 256 } });
    const cap = new Recording(new LocalCapacityProvider({ cpuThreads: 2, gpuDeviceIds: [1] }));
    const e = engine(cap);
    await expect(e.load('small')).rejects.toThrow(
      /CUDA failure 2: out of memory ; GPU=1 ; .*expr=cudaMalloc\(\(void\*\*\)&p, size\);.*the session needs 258 MiB, the allocation holds 100 MiB/,
    );
    expect(cap.asked[0]!.device).toEqual({ kind: 'gpu', threadsPerReplica: 1, memoryMiB: 100 });
    expect(cap.held).toBe(0);
  });

  it('simulated CUDA: declared memory is what replicas ask for; without it the first replica measures it and later ones ask for that', async () => {
    configureGpuProcess({ simulated: { msPerBatch: 30, baseMiB: 256 } });
    const cap = new Recording(new LocalCapacityProvider({ cpuThreads: 2, gpuDeviceIds: [1] }));
    const e = engine(cap);
    const declared = await e.load('declared');
    expect(declared.pool.list()[0]!.lease.placement).toEqual({ kind: 'cuda', deviceId: 1, uuid: null, memoryMiB: 300 });
    expect(e.metadata('declared').device).toEqual({ kind: 'gpu', memory_mib: 300, memory_source: 'declared' });

    const plain = await e.load('plain');
    expect(cap.asked.at(-1)!.device).toEqual({ kind: 'gpu', threadsPerReplica: 1 });
    expect(cap.asked.at(-1)!.count).toBe(1);
    expect(e.metadata('plain').device).toEqual({ kind: 'gpu', memory_mib: 258, memory_source: 'measured' });
    expect(e.index().find((x) => x.name === 'plain')!.device).toEqual({ kind: 'gpu', memory_mib: 258, memory_source: 'measured' });
    await plain.scaleTo(3);
    expect(cap.asked.at(-1)).toMatchObject({ count: 2, device: { kind: 'gpu', threadsPerReplica: 1, memoryMiB: 258 } });
    expect(plain.replicas).toBe(3);

    await e.load('two');
    expect(cap.asked.filter((r) => r.model === 'two').map((r) => [r.count, r.device.memoryMiB])).toEqual([
      [1, undefined],
      [1, 258],
    ]);

    // Real outputs from the CPU run; each batch takes at least the simulated time.
    const r = await e.infer({
      model: 'plain',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data: new Float32Array(3 * 48 * 192).fill(0.5) }],
    });
    const p = Array.from(r.outputs[0]!.data as Float32Array);
    expect(p).toHaveLength(2);
    expect(p[0]! + p[1]!).toBeCloseTo(1, 5);
    expect(r.computeMs).toBeGreaterThanOrEqual(29);
  });
});
