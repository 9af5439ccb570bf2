import { copyFileSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DomainException } from '@tandem/shared';
import type { Tensor } from '@tandem/sdk';
import { afterAll, describe, expect, it } from 'vitest';
import type { ReplicaRestartReason } from '../inference-observer';
import { NOOP_OBSERVER } from '../inference-observer';
import { parseModelConfig } from '../model-config';
import { nodeReplicaSource, type NodeModelHooks } from './node-model.backend';
import { HANG_GRACE_MS, NodeModelRunner } from './node-model.runner';

const root = mkdtempSync(join(tmpdir(), 'node-runner-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// x[0] picks the behaviour; anything else is tanh.
const MODEL = `
import { defineModel, InputError } from '@tandem/sdk';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
export default defineModel({
  initialize(ctx) {
    if (existsSync(join(ctx.dir, 'fail-init'))) throw new Error('init refused');
    ctx.log.info('up', { dir: ctx.dir, placement: ctx.placement, name: ctx.name, version: ctx.version });
    return { hog: [] as unknown[] };
  },
  async execute({ x }, state, ctx, info) {
    const xs = x.data as Float32Array;
    if (info.warmup) ctx.log.info('warmup', { rows: x.shape[0], sum: xs.reduce((a, b) => a + b, 0) });
    switch (xs[0]) {
      case 1: throw new InputError('x[0] must not be 1');
      case 2: throw new Error('model bug');
      case 3: setTimeout(() => { throw new Error('stray timer'); }, 1); await new Promise((r) => setTimeout(r, 5000)); break;
      case 4: process.exit(1); break;
      case 5: for (;;) state.hog.push(new Array(1e5).fill({ s: 'x'.repeat(10) }));
      case 6: for (;;) {}
      case 7: await new Promise((r) => info.signal.addEventListener('abort', r)); await new Promise((r) => setTimeout(r, 200)); break;
      case 8: return { score: (await ctx.infer('other', [x], { outputs: ['y'] })).y };
      case 9: case 10: {
        // Rows before and after the call: a transfer gives the memory away, a copy does not.
        const before = xs.length;
        await ctx.infer('other', [x], { outputs: ['y'], transfer: xs[0] === 9 });
        return { score: { datatype: 'FP32', shape: [1, 1], data: Float32Array.of(before * 100 + (x.data as Float32Array).length) } };
      }
    }
    return { score: { datatype: 'FP32', shape: x.shape, data: xs.map(Math.tanh) } };
  },
});
`;

let n = 0;
async function start(config: Record<string, unknown> = {}, hooks: Partial<NodeModelHooks> = {}) {
  const dir = join(root, `m${++n}`, '1');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.ts'), MODEL);
  const cfg = parseModelConfig(
    {
      backend: 'node',
      max_batch_size: 8,
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 1] }],
      outputs: [{ name: 'score', datatype: 'FP32', shape: [-1, 1] }],
      ...config,
    },
    'test',
  );
  const logs: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  const restarts: ReplicaRestartReason[] = [];
  const source = await nodeReplicaSource(
    { name: `m${n}`, version: '1', path: join(dir, 'model.ts'), config: cfg },
    { infer: hooks.infer ?? (() => Promise.reject(new Error('no'))), log: (level, msg, fields) => logs.push({ level, msg, fields }) },
    { ...NOOP_OBSERVER, replicaRestarted: (_m, _v, reason) => restarts.push(reason) },
  );
  const runner = (await source.open({ kind: 'cpu', intraOpThreads: 1 })) as NodeModelRunner;
  return { runner, logs, restarts, dir };
}

const x = (...v: number[]): Tensor => ({ name: 'x', datatype: 'FP32', shape: [v.length, 1], data: Float32Array.from(v) });
const run = (r: NodeModelRunner, t: Tensor, deadlineMs = 10_000) => r.runUnchecked([t], undefined, { deadlineAt: Date.now() + deadlineMs });
const value = async (r: NodeModelRunner, v: number): Promise<number> => ((await run(r, x(v)))[0]!.data as Float32Array)[0]!;

describe('NodeModelRunner: a node model in its own worker thread', () => {
  it('runs the model, forwards its log with model and version, warms up with zeros first', async () => {
    const { runner, logs, dir } = await start({ warmup: { batch_sizes: [1, 4] } });
    try {
      expect(await value(runner, 0.5)).toBeCloseTo(Math.tanh(0.5), 6);
      expect(logs.map((l) => [l.msg, l.fields])).toEqual([
        ['up', { dir, placement: { kind: 'cpu', threads: 1 }, name: `m${n}`, version: '1', model: `m${n}` }],
        ['warmup', { rows: 1, sum: 0, model: `m${n}`, version: '1' }],
        ['warmup', { rows: 4, sum: 0, model: `m${n}`, version: '1' }],
      ]);
    } finally {
      await runner.release();
    }
  });

  it('InputError → 400 with its message; another throw → a plain error with the model named and its stack', async () => {
    const { runner } = await start();
    try {
      const input = await run(runner, x(1)).catch((e: unknown) => e);
      expect(input).toBeInstanceOf(DomainException);
      expect(input).toMatchObject({ code: 'invalid_argument', message: 'x[0] must not be 1' });
      const bug = (await run(runner, x(2)).catch((e: unknown) => e)) as Error;
      expect(bug).not.toBeInstanceOf(DomainException);
      expect(bug.message).toBe(`model 'm${n}' version 1 failed: model bug`);
      expect(bug.stack).toMatch(/model\.ts/);
      expect(await value(runner, 0.1)).toBeCloseTo(Math.tanh(0.1), 6);
      expect(runner.restarts).toBe(0);
    } finally {
      await runner.release();
    }
  });

  it.each([
    [3, 'crashed', /crashed: stray timer/],
    [4, 'crashed', /exited with code 1/],
  ] as const)('a thread that dies (x=%s) fails its batch at once and is replaced', async (v, reason, msg) => {
    const { runner, restarts, logs } = await start();
    try {
      const t0 = Date.now();
      await expect(run(runner, x(v))).rejects.toThrow(msg);
      expect(Date.now() - t0).toBeLessThan(3_000);
      expect(await value(runner, 0.2)).toBeCloseTo(Math.tanh(0.2), 6);
      expect(restarts).toEqual([reason]);
      expect(logs.some((l) => l.level === 'error' && l.fields.event === 'replica_restart')).toBe(true);
    } finally {
      await runner.release();
    }
  });

  it('a model that outgrows device.memory_limit_mib loses only its thread', async () => {
    const { runner, restarts } = await start({ device: { memory_limit_mib: 32 } });
    try {
      await expect(run(runner, x(5), 30_000)).rejects.toThrow(/ran out of memory \(its heap limit is device.memory_limit_mib = 32\)/);
      expect(restarts).toEqual(['out_of_memory']);
      expect(await value(runner, 0.3)).toBeCloseTo(Math.tanh(0.3), 6);
    } finally {
      await runner.release();
    }
  });

  it('a batch still running at its deadline is a 504; a hung thread is replaced, a cooperative one kept', async () => {
    const { runner, restarts } = await start();
    try {
      await expect(run(runner, x(7), 100)).rejects.toMatchObject({ code: 'deadline_exceeded' });
      expect(await value(runner, 0.4)).toBeCloseTo(Math.tanh(0.4), 6);
      expect(restarts).toEqual([]);
      const t0 = Date.now();
      await expect(run(runner, x(6), 100)).rejects.toMatchObject({ code: 'deadline_exceeded' });
      expect(Date.now() - t0).toBeLessThan(1_000);
      // Routed to the replica meanwhile: waits for the new thread, then runs.
      expect(await value(runner, 0.5)).toBeCloseTo(Math.tanh(0.5), 6);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(HANG_GRACE_MS);
      expect(restarts).toEqual(['hung']);
      expect(runner.restarts).toBe(1);
    } finally {
      await runner.release();
    }
  });

  it('a thread that cannot be restarted answers 503 until a later try succeeds', async () => {
    const { runner, dir } = await start();
    try {
      writeFileSync(join(dir, 'fail-init'), '');
      await expect(run(runner, x(4))).rejects.toThrow(/exited with code 1/);
      await expect(run(runner, x(0.1))).rejects.toMatchObject({
        code: 'unavailable',
        message: expect.stringMatching(/has no working replica: initialize failed: init refused/),
      });
      rmSync(join(dir, 'fail-init'));
      await new Promise((r) => setTimeout(r, 1_100));
      expect(await value(runner, 0.1)).toBeCloseTo(Math.tanh(0.1), 6);
    } finally {
      await runner.release();
    }
  });

  it('ctx.infer goes to the hook with the remaining deadline; a 400 there is an InputError in the model', async () => {
    const seen: { model: string; timeoutMs?: number; outputs?: string[] }[] = [];
    const { runner } = await start(
      {},
      {
        infer: async (req) => {
          seen.push({ model: req.model, timeoutMs: req.timeoutMs, outputs: req.outputs });
          if (req.model !== 'other') throw DomainException.invalid('bad');
          return { outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 1], data: Float32Array.of(42) }] };
        },
      },
    );
    try {
      expect(await value(runner, 8)).toBe(42);
      expect(seen).toEqual([{ model: 'other', timeoutMs: expect.any(Number), outputs: ['y'] }]);
      expect(seen[0]!.timeoutMs).toBeGreaterThan(9_000);
    } finally {
      await runner.release();
    }
  });

  it('ctx.infer with transfer: true moves the inputs to the callee (they are empty afterwards); without it they are copied', async () => {
    const got: number[][] = [];
    const { runner } = await start(
      {},
      {
        infer: async (req) => {
          got.push(Array.from(req.inputs[0]!.data as Float32Array));
          return { outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 1], data: Float32Array.of(1) }] };
        },
      },
    );
    try {
      expect(await value(runner, 9)).toBe(100); // 1 row before, 0 after
      expect(await value(runner, 10)).toBe(101); // 1 row before and after
      expect(got).toEqual([[9], [10]]); // the callee saw the data either way
    } finally {
      await runner.release();
    }
  });

  it('ctx.session runs onnxruntime inside the replica thread, on the replica placement', async () => {
    const dir = join(root, 'onnx', '1');
    mkdirSync(dir, { recursive: true });
    copyFileSync(realpathSync('models/ppocr_cls/1/model.onnx'), join(dir, 'cls.onnx'));
    writeFileSync(
      join(dir, 'model.ts'),
      `import { defineModel } from '@tandem/sdk';
       export default defineModel({
         initialize: (ctx) => ctx.session('cls.onnx'),
         async execute({ img }, s) { return { p: (await s.run({ x: img }))[s.outputNames[0]] }; },
       });`,
    );
    const config = parseModelConfig(
      {
        backend: 'node',
        max_batch_size: 4,
        warmup: { batch_sizes: [2] },
        inputs: [{ name: 'img', datatype: 'FP32', shape: [-1, 3, 48, 192] }],
        outputs: [{ name: 'p', datatype: 'FP32', shape: [-1, 2] }],
      },
      't',
    );
    const source = await nodeReplicaSource(
      { name: 'onnx', version: '1', path: join(dir, 'model.ts'), config },
      { infer: () => Promise.reject(new Error('no')), log: () => undefined },
      NOOP_OBSERVER,
    );
    const runner = (await source.open({ kind: 'cpu', intraOpThreads: 1 })) as NodeModelRunner;
    try {
      const [p] = await runner.runUnchecked([{ name: 'img', datatype: 'FP32', shape: [3, 3, 48, 192], data: new Float32Array(3 * 3 * 48 * 192).fill(0.5) }]);
      expect(p!.shape).toEqual([3, 2]);
      const d = p!.data as Float32Array;
      expect(d[0]! + d[1]!).toBeCloseTo(1, 5);
    } finally {
      await runner.release();
    }
  });

  it('load failures carry the reason: initialize throws, the file does not compile, undeclared signature', async () => {
    const dir = join(root, 'bad', '1');
    mkdirSync(dir, { recursive: true });
    const cfg = parseModelConfig(
      { backend: 'node', inputs: [{ name: 'x', datatype: 'FP32', shape: [1] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [1] }] },
      't',
    );
    const hooks: NodeModelHooks = { infer: () => Promise.reject(new Error('no')), log: () => undefined };
    const open = async (src: string, config = cfg) => {
      writeFileSync(join(dir, 'model.ts'), src);
      const s = await nodeReplicaSource({ name: 'bad', version: '1', path: join(dir, 'model.ts'), config }, hooks, NOOP_OBSERVER);
      return s.open({ kind: 'cpu', intraOpThreads: 1 });
    };
    await expect(
      open(`import { defineModel } from '@tandem/sdk'; export default defineModel({ initialize() { throw new Error('nope'); }, execute: () => ({}) });`),
    ).rejects.toThrow('initialize failed: nope');
    await expect(open(`export default defineModel({ execute( });`)).rejects.toThrow(/cannot compile .*model\.ts:1:/);
    await expect(open(`export default 42;`)).rejects.toThrow(/default export must be defineModel/);
    const undeclared = parseModelConfig({ backend: 'node', inputs: [{ name: 'x', shape: [1] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [1] }] }, 't');
    await expect(open('', undeclared)).rejects.toThrow(/input 'x' needs a datatype and a shape/);
    await expect(open('', parseModelConfig({ backend: 'node' }, 't'))).rejects.toThrow(/declares its inputs in config.json/);
  });
});
