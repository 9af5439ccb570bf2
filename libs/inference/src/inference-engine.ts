import { DomainException } from '@tandem/shared';
import type { AdmissionHold } from './admission-gate';
import { LocalCapacityProvider } from './capacity-provider';
import type { CapacityProvider } from './placement';
import { NOOP_OBSERVER, type InferenceObserver } from './inference-observer';
import { validateInputs } from './input-validation';
import { ModelInstance } from './model-instance';
import type { ModelConfig } from './model-config';
import type { ModelRepository } from './model-repository';
import type { KeepWarmOptions } from './keep-warm';
import type { NodeModelHooks } from './node-backend/node-model.backend';
import type { SessionFactory } from './session-factory';
import type { ModelDeviceInfo } from './oip/oip-types';
import type { InferTensor, TensorSpec } from './tensor';

export interface InferenceEngineOptions {
  repository: ModelRepository;
  capacity?: CapacityProvider;
  observer?: InferenceObserver;
  sessionFactory?: SessionFactory;
  /** Deadline for requests that name none and whose model config sets none. */
  defaultTimeoutMs: number;
  /** Upper bound on a client-requested timeout. */
  maxTimeoutMs?: number;
  /**
   * Node models: where their ctx.log goes (default: nowhere) and how their ctx.infer reaches
   * other models (default: this engine's `infer`; the gateway routes it through its service so
   * the calls count in metrics and autoscaling like any request).
   */
  node?: Partial<NodeModelHooks>;
  /** Idle CPU replicas of models in use run a zero batch this often (keep-warm.ts); default off. */
  keepWarm?: KeepWarmOptions;
}

/** Transport-independent inference request (REST and gRPC decode into this). */
export interface InferRequest {
  model: string;
  version?: string;
  inputs: InferTensor[];
  /** Output names wanted; all outputs when omitted. */
  outputs?: string[];
  timeoutMs?: number;
}

export interface InferResult {
  model: string;
  version: string;
  outputs: InferTensor[];
  queueMs: number;
  computeMs: number;
  batchItems: number;
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** GPU models: memory per replica (declared or measured). */
  device?: ModelDeviceInfo;
}

export type ModelState = 'loading' | 'ready' | 'failed';

/** Triton's repository index entry; `device` for GPU models (memory per replica). */
export interface RepositoryIndexEntry {
  name: string;
  version: string;
  state: 'READY' | 'LOADING' | 'UNAVAILABLE';
  reason: string;
  device?: ModelDeviceInfo;
}

function deviceInfo(inst: ModelInstance): ModelDeviceInfo | undefined {
  if (inst.config.device.kind !== 'gpu') return undefined;
  return { kind: 'gpu', memory_mib: inst.deviceMemoryMiB ?? null, memory_source: inst.deviceMemorySource ?? null };
}

interface Slot {
  state: ModelState;
  instance?: ModelInstance;
  error?: string;
}

/**
 * Serves every model version of a repository: loads them through a capacity provider,
 * answers metadata, and routes infer requests to the version's batcher.
 */
export class InferenceEngine {
  private readonly slots = new Map<string, Slot>();
  private readonly capacity: CapacityProvider;
  private readonly observer: InferenceObserver;
  private readonly node: NodeModelHooks;

  constructor(private readonly opts: InferenceEngineOptions) {
    this.capacity = opts.capacity ?? new LocalCapacityProvider();
    this.observer = opts.observer ?? NOOP_OBSERVER;
    this.node = { infer: opts.node?.infer ?? ((r) => this.infer(r)), log: opts.node?.log ?? (() => undefined) };
  }

  /** One model version's instance with this engine's capacity, observer, sessions, node hooks and keep-warm. */
  private open(name: string, version: string, path: string, config: ModelConfig): Promise<ModelInstance> {
    return ModelInstance.load(name, version, path, config, this.capacity, this.observer, this.opts.sessionFactory, this.node, this.opts.keepWarm);
  }

  get repository(): ModelRepository {
    return this.opts.repository;
  }

  /** Loads every version of every model; a model that fails is recorded (not ready), not fatal. */
  async loadAll(): Promise<void> {
    const jobs: Promise<void>[] = [];
    for (const m of this.opts.repository.list())
      for (const v of m.versions)
        jobs.push(
          this.load(m.name, v.version).then(
            () => undefined,
            () => undefined,
          ),
        );
    await Promise.all(jobs);
  }

  async load(name: string, version?: string): Promise<ModelInstance> {
    const { model, version: v } = this.opts.repository.resolve(name, version);
    const key = `${name}/${v.version}`;
    const existing = this.slots.get(key);
    if (existing?.instance) return existing.instance;
    const slot: Slot = { state: 'loading' };
    this.slots.set(key, slot);
    try {
      slot.instance = await this.open(name, v.version, v.path, model.config);
      slot.state = 'ready';
      return slot.instance;
    } catch (e) {
      slot.state = 'failed';
      slot.error = e instanceof Error ? e.message : String(e);
      throw e;
    }
  }

  /**
   * Unloads every version of a model (Triton's repository `unload`): it stops taking new
   * requests at once, answers what is queued or running, then frees its replicas.
   */
  async unload(name: string): Promise<void> {
    this.opts.repository.get(name);
    const mine = [...this.slots.entries()].filter(([k]) => k.startsWith(`${name}/`));
    for (const [k] of mine) this.slots.delete(k);
    await Promise.all(mine.map(([, s]) => s.instance?.drainAndClose()));
  }

  /**
   * (Re)loads a model from disk (Triton's repository `load`) without failing requests: new or
   * changed versions load beside the serving ones, traffic switches only when all loaded, and
   * the superseded instances drain before they close. A replica-count-only change rescales in
   * place. If anything fails to load, nothing changes and the old versions keep serving.
   * A node model's versions always load anew: its code may have changed under the same path.
   */
  async reload(name: string): Promise<void> {
    const entry = this.opts.repository.read(name);
    const sameShape = (a: object, b: object): boolean => {
      const strip = (c: object): string => JSON.stringify({ ...c, replicas: undefined });
      return strip(a) === strip(b);
    };
    const next: { version: string; instance: ModelInstance; reused: boolean }[] = [];
    try {
      for (const v of entry.versions) {
        const cur = this.slots.get(`${name}/${v.version}`)?.instance;
        if (cur && entry.config.backend !== 'node' && cur.path === v.path && sameShape(cur.config, entry.config)) {
          next.push({ version: v.version, instance: cur, reused: true });
          continue;
        }
        const instance = await this.open(name, v.version, v.path, entry.config);
        next.push({ version: v.version, instance, reused: false });
      }
    } catch (e) {
      await Promise.all(next.filter((n) => !n.reused).map((n) => n.instance.close()));
      throw DomainException.invalid(`failed to load model '${name}': ${e instanceof Error ? e.message : String(e)}; the previous versions keep serving`);
    }
    const superseded = [...this.slots.entries()].filter(([k, s]) => k.startsWith(`${name}/`) && !next.some((n) => n.instance === s.instance));
    this.opts.repository.commit(entry);
    for (const [k] of superseded) this.slots.delete(k);
    for (const n of next) this.slots.set(`${name}/${n.version}`, { state: 'ready', instance: n.instance });
    await Promise.all([
      ...next.filter((n) => n.reused && !n.instance.config.autoscaling).map((n) => n.instance.scaleTo(entry.config.replicas)),
      ...superseded.map(([, s]) => s.instance?.drainAndClose()),
    ]);
  }

  /** Triton's repository index: every model version on disk with its state. */
  index(): RepositoryIndexEntry[] {
    const out: RepositoryIndexEntry[] = [];
    for (const m of this.opts.repository.list()) {
      for (const v of m.versions) {
        const s = this.slots.get(`${m.name}/${v.version}`);
        const state = s?.state === 'ready' ? 'READY' : s?.state === 'loading' ? 'LOADING' : 'UNAVAILABLE';
        const device = s?.instance
          ? deviceInfo(s.instance)
          : m.config.device.kind === 'gpu'
            ? {
                kind: 'gpu' as const,
                memory_mib: m.config.device.memory_mib ?? null,
                memory_source: m.config.device.memory_mib !== undefined ? ('declared' as const) : null,
              }
            : undefined;
        out.push({
          name: m.name,
          version: v.version,
          state,
          reason: s?.state === 'failed' ? (s.error ?? 'load failed') : s ? '' : 'unloaded',
          ...(device ? { device } : {}),
        });
      }
    }
    return out;
  }

  /** Every known version with its state; failed ones carry the load error. */
  states(): { model: string; version: string; state: ModelState; error?: string }[] {
    return [...this.slots.entries()].map(([k, s]) => {
      const [model, version] = k.split('/') as [string, string];
      return { model, version, state: s.state, ...(s.error ? { error: s.error } : {}) };
    });
  }

  /** The loaded instance; 404 when the model/version is unknown, 503 when not (yet) loaded. */
  instance(name: string, version?: string): ModelInstance {
    const { version: v } = this.opts.repository.resolve(name, version);
    const slot = this.slots.get(`${name}/${v.version}`);
    if (!slot?.instance) {
      throw DomainException.unavailable(
        `model '${name}' version ${v.version} ${slot?.state === 'failed' ? `failed to load: ${slot.error}` : 'is not loaded'}`,
        5,
      );
    }
    return slot.instance;
  }

  isReady(name: string, version?: string): boolean {
    return this.readiness(name, version).ready;
  }

  /** Ready or not, and why not when the version failed to load (its load error). */
  readiness(name: string, version?: string): { ready: boolean; reason?: string } {
    const { version: v } = this.opts.repository.resolve(name, version);
    const slot = this.slots.get(`${name}/${v.version}`);
    if (slot?.state === 'failed') return { ready: false, reason: slot.error ?? 'load failed' };
    return { ready: slot?.state === 'ready' && (slot.instance?.replicas ?? 0) > 0 };
  }

  metadata(name: string, version?: string): ModelMetadata {
    const { model } = this.opts.repository.resolve(name, version);
    const inst = this.instance(name, version);
    return {
      name,
      versions: model.versions.map((x) => x.version),
      platform: inst.platform,
      inputs: inst.signature.inputs,
      outputs: inst.signature.outputs,
      ...(inst.config.device.kind === 'gpu' ? { device: deviceInfo(inst) } : {}),
    };
  }

  /**
   * Admission, asked before a request's body is read: undefined to go ahead, else the 503 it
   * gets (at once, or after waiting for room: AdmissionGate). Unknown or unloaded models pass:
   * the request itself then gets their 404/503.
   */
  admit(name: string, version?: string, hold?: AdmissionHold): DomainException | undefined | Promise<DomainException | undefined> {
    const model = this.opts.repository.find(name);
    const v = version === undefined || version === '' ? model?.versions.at(-1)?.version : version;
    return v === undefined ? undefined : this.slots.get(`${name}/${v}`)?.instance?.batcher.admit(hold);
  }

  async infer(req: InferRequest): Promise<InferResult> {
    const inst = this.instance(req.model, req.version);
    const sig = inst.signature;
    if (req.outputs) {
      for (const o of req.outputs) {
        if (!sig.outputs.some((s) => s.name === o)) {
          throw DomainException.invalid(`unknown output '${o}'; the model has ${sig.outputs.map((s) => `'${s.name}'`).join(', ')}`);
        }
      }
    }
    validateInputs(sig, inst.config.max_batch_size, req.inputs);
    const max = this.opts.maxTimeoutMs ?? Number.MAX_SAFE_INTEGER;
    const timeoutMs = Math.min(req.timeoutMs ?? inst.config.default_timeout_ms ?? this.opts.defaultTimeoutMs, max);
    const r = await inst.batcher.submit(req.inputs, timeoutMs);
    const outputs = req.outputs ? req.outputs.map((n) => r.outputs.find((o) => o.name === n)!) : r.outputs;
    return { model: req.model, version: inst.version, outputs, queueMs: r.queueMs, computeMs: r.computeMs, batchItems: r.batchItems };
  }

  async close(): Promise<void> {
    const all = [...this.slots.values()];
    this.slots.clear();
    await Promise.all(all.map((s) => s.instance?.close()));
  }
}
