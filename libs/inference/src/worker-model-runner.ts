import type { Worker } from 'node:worker_threads';
import { compiledEntry, entryWorker } from './entry-module';
import { validateInputs } from './input-validation';
import type { ModelConfig } from './model-config';
import type { InferenceRunner } from './model-runner';
import { resolveSignature } from './model-signature';
import type { ReplicaWorkerData } from './replica-worker.entry';
import { fromWire, ortPath, packedBuffers, toWire, type FromSessionHost as FromWorker, type WireTensor } from './runner-wire';
import { withCudaHint } from './gpu/cuda-provider';
import { sessionOptionsFor, type DevicePlacement } from './session-factory';
import type { InferTensor, ModelSignature } from './tensor';
import { forPostMessage, recycleInputs } from './tensor-ownership';

/** A replica's runner: one onnxruntime session inside its own worker thread. */
export class WorkerModelRunner implements InferenceRunner {
  /** The worker moves every numeric input buffer back with its answer (replica-worker.entry.ts). */
  readonly returnsInputs = true;
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (o: WireTensor[]) => void; reject: (e: Error) => void }>();
  private dead: Error | undefined;

  private constructor(
    private readonly worker: Worker,
    readonly signature: ModelSignature,
    readonly config: ModelConfig,
    readonly placement: DevicePlacement,
    public deviceMemoryMiB: number | undefined,
  ) {
    worker.on('message', (m: FromWorker) => {
      if (m.type !== 'result' && m.type !== 'error') return;
      recycleInputs(m.inputs);
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.type === 'result') p?.resolve(m.outputs);
      else p?.reject(new Error(`model run failed: ${m.message}`));
    });
    const fail = (e: Error): void => {
      this.dead = e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`replica worker exited (${code})`)));
  }

  static async load(modelPath: string, config: ModelConfig, placement: DevicePlacement): Promise<WorkerModelRunner> {
    const data: ReplicaWorkerData = {
      ortPath: ortPath(),
      modelPath,
      sessionOptions: sessionOptionsFor(placement, { allowSpinning: config.device.allow_spinning, memoryArena: config.device.memory_arena }),
    };
    const worker = entryWorker(await compiledEntry(__dirname, 'replica-worker.entry'), data);
    let onMessage: (m: FromWorker) => void = () => undefined;
    let onError: (e: Error) => void = () => undefined;
    let onExit: (c: number) => void = () => undefined;
    const first = await new Promise<FromWorker>((resolve, reject) => {
      onMessage = resolve;
      onError = reject;
      onExit = (c) => reject(new Error(`replica worker exited (${c}) while loading ${modelPath}`));
      worker.once('message', onMessage).once('error', onError).once('exit', onExit);
    }).finally(() => {
      worker.off('message', onMessage).off('error', onError).off('exit', onExit);
    });
    if (first.type !== 'ready') {
      await worker.terminate();
      throw withCudaHint(new Error(`cannot load ${modelPath}: ${first.type === 'init-error' ? first.message : first.type}`));
    }
    try {
      const signature = resolveSignature(first, config);
      return new WorkerModelRunner(worker, signature, config, placement, first.memoryMiB);
    } catch (e) {
      await worker.terminate();
      throw e;
    }
  }

  async run(inputs: readonly InferTensor[], outputNames?: readonly string[]): Promise<InferTensor[]> {
    validateInputs(this.signature, this.config.max_batch_size, inputs);
    return this.runUnchecked(inputs, outputNames);
  }

  /** `transfer`: the input buffers are the caller's to give away (moved to the worker, not copied). */
  async runUnchecked(inputs: readonly InferTensor[], outputNames?: readonly string[], opts: { transfer?: boolean } = {}): Promise<InferTensor[]> {
    if (this.dead) throw this.dead;
    const names = outputNames ? [...outputNames] : this.signature.outputs.map((o) => o.name);
    const feeds = toWire(inputs);
    const transfer = packedBuffers(feeds);
    for (const f of feeds) {
      if ('ends' in f.data) continue;
      const { data, move } = forPostMessage(f.data, opts.transfer ?? false, true);
      f.data = data;
      if (move && !transfer.includes(move)) transfer.push(move);
    }
    const id = ++this.seq;
    const outputs = await new Promise<WireTensor[]>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ type: 'run', id, feeds, outputs: names }, transfer);
    });
    return fromWire(outputs);
  }

  async release(): Promise<void> {
    if (this.dead) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 5_000);
      this.worker.on('message', (m: FromWorker) => {
        if (m.type === 'released') {
          clearTimeout(t);
          resolve();
        }
      });
      this.worker.postMessage({ type: 'release' });
    });
    await this.worker.terminate();
  }
}
