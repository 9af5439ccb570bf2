import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node';
import type { InferOptions, Logger, ModelContext, OutputTensor, Session, Tensor } from '@tandem/sdk';

/**
 * A real ModelContext for driving a node model's default export without a gateway:
 * `infer(model, …)` runs that repository model's model.onnx (latest version) in onnxruntime
 * directly, after the checks the gateway would make against its config.json (names, shapes
 * with -1 wildcards, max_batch_size), so a config the pipeline disagrees with fails here too.
 * Only FP32 tensors cross it: that is all the ppocr models take and give.
 */
export interface LocalModelContext extends ModelContext {
  /** Calls per repository model, and the largest batch each saw. */
  readonly calls: Map<string, { calls: number; largestBatch: number }>;
  close(): Promise<void>;
}

interface RepoModel {
  session: InferenceSession;
  maxBatchSize: number;
  inputs: { name: string; shape?: number[] }[];
}

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export function localModelContext(opts: { repo: string; model: string; threads?: number; log?: Logger }): LocalModelContext {
  const repo = resolve(opts.repo);
  const threads = opts.threads ?? 1;
  const dir = join(repo, opts.model, latestVersion(join(repo, opts.model)));
  const models = new Map<string, Promise<RepoModel>>();
  const sessions: InferenceSession[] = [];
  const calls = new Map<string, { calls: number; largestBatch: number }>();
  const sessionOptions: InferenceSession.SessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1, executionProviders: ['cpu'] };

  const open = async (file: string): Promise<InferenceSession> => {
    const s = await InferenceSession.create(file, sessionOptions);
    sessions.push(s);
    return s;
  };

  const repoModel = (name: string): Promise<RepoModel> => {
    let m = models.get(name);
    if (!m) {
      m = (async () => {
        const mdir = join(repo, name);
        const cfgFile = join(mdir, 'config.json');
        const cfg = (existsSync(cfgFile) ? JSON.parse(readFileSync(cfgFile, 'utf8')) : {}) as { max_batch_size?: number; inputs?: RepoModel['inputs'] };
        const session = await open(join(mdir, latestVersion(mdir), 'model.onnx'));
        return { session, maxBatchSize: cfg.max_batch_size ?? 0, inputs: cfg.inputs ?? [] };
      })();
      models.set(name, m);
    }
    return m;
  };

  const ctx: LocalModelContext = {
    name: opts.model,
    version: dir.split('/').at(-1)!,
    dir,
    placement: { kind: 'cpu', threads },
    log: opts.log ?? quiet,
    calls,

    async session(file: string): Promise<Session> {
      const s = await open(join(dir, file));
      return {
        inputNames: s.inputNames,
        outputNames: s.outputNames,
        run: async (feeds, outputs) => fromOrt(await (outputs ? s.run(toOrt(Object.entries(feeds)), [...outputs]) : s.run(toOrt(Object.entries(feeds))))),
      };
    },

    async infer(model: string, inputs: readonly Tensor[], o?: InferOptions): Promise<Record<string, Tensor>> {
      const m = await repoModel(model);
      for (const t of inputs) {
        const spec = m.inputs.find((s) => s.name === t.name);
        if (!spec && m.inputs.length > 0) throw new Error(`${model}: unexpected input '${t.name}'`);
        const want = spec?.shape;
        if (want && (want.length !== t.shape.length || want.some((d, i) => d !== -1 && d !== t.shape[i]))) {
          throw new Error(`${model}: input '${t.name}' has shape [${t.shape}], config.json expects [${want}]`);
        }
        if (m.maxBatchSize > 0 && t.shape[0]! > m.maxBatchSize) throw new Error(`${model}: batch ${t.shape[0]} exceeds max_batch_size ${m.maxBatchSize}`);
      }
      const stat = calls.get(model) ?? { calls: 0, largestBatch: 0 };
      stat.calls++;
      stat.largestBatch = Math.max(stat.largestBatch, inputs[0]?.shape[0] ?? 0);
      calls.set(model, stat);
      const feeds = toOrt(inputs.map((t) => [t.name, t]));
      return fromOrt(await (o?.outputs ? m.session.run(feeds, [...o.outputs]) : m.session.run(feeds)));
    },

    async close(): Promise<void> {
      await Promise.all(sessions.map((s) => s.release()));
    },
  };
  return ctx;
}

function latestVersion(modelDir: string): string {
  const versions = readdirSync(modelDir).filter((v) => /^[1-9][0-9]*$/.test(v));
  if (versions.length === 0) throw new Error(`${modelDir} has no version directory`);
  return versions.sort((a, b) => Number(a) - Number(b)).at(-1)!;
}

function toOrt(entries: [string, OutputTensor][]): Record<string, OrtTensor> {
  const feeds: Record<string, OrtTensor> = {};
  for (const [name, t] of entries) {
    if (t.datatype !== 'FP32' || !(t.data instanceof Float32Array))
      throw new Error(`input '${name}': only FP32 tensors are supported here (got ${t.datatype})`);
    feeds[name] = new OrtTensor('float32', t.data, t.shape);
  }
  return feeds;
}

function fromOrt(out: InferenceSession.OnnxValueMapType): Record<string, Tensor> {
  const res: Record<string, Tensor> = {};
  for (const [name, v] of Object.entries(out)) {
    if (!(v instanceof OrtTensor) || v.type !== 'float32') throw new Error(`output '${name}': only float32 tensors are supported here`);
    res[name] = { name, datatype: 'FP32', shape: [...v.dims], data: v.data as Float32Array };
  }
  return res;
}
