import { copyFileSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileUserModule } from '@tandem/shared';
import { InputError, isInputError, textOf, type Tensor } from '@tandem/sdk';
import { afterAll, describe, expect, it } from 'vitest';
import { errorFromReport, errorReport, HostInitError, startModelHost, type ModelHostOptions } from './node-model.host';

const dir = mkdtempSync(join(tmpdir(), 'node-host-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
async function host(source: string, over: Partial<ModelHostOptions> = {}) {
  const file = join(dir, `model${++n}.ts`);
  writeFileSync(file, source);
  const logs: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
  const calls: { model: string; timeoutMs?: number }[] = [];
  const h = await startModelHost({
    module: await compileUserModule(file),
    name: 'm',
    version: '3',
    dir,
    placement: { kind: 'cpu', threads: 2 },
    sessionOptions: { executionProviders: ['cpu'] },
    inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }],
    outputs: [
      { name: 'y', datatype: 'FP32', shape: [-1, 2] },
      { name: 'n', datatype: 'INT32', shape: [-1] },
    ],
    maxBatchSize: 8,
    log: (level, msg, fields) => logs.push({ level, msg, fields }),
    infer: async (model, _inputs, o) => {
      calls.push({ model, timeoutMs: o.timeoutMs });
      return {};
    },
    ...over,
  });
  return { h, logs, calls };
}

const x = (rows: number): Tensor => ({ name: 'x', datatype: 'FP32', shape: [rows, 2], data: new Float32Array(rows * 2).fill(1) });

const DOUBLE = `
import { defineModel } from '@tandem/sdk';
export default defineModel({
  initialize(ctx) { ctx.log.info('hello', { threads: ctx.placement.threads, err: new Error('e'), big: 1n }); return { k: 2, ctx }; },
  execute({ x }, state, ctx, info) {
    const y = (x.data as Float32Array).map((v) => v * state.k);
    return { n: { datatype: 'INT32', shape: [x.shape[0]], data: Int32Array.from(info.requests.flatMap((r, i) => Array(r).fill(i))) }, y: { datatype: 'FP32', shape: x.shape, data: y } };
  },
  finalize(state) { state.ctx.log.warn('bye'); },
});`;

describe('node model host', () => {
  it('initializes once, runs execute on the merged batch with its requests, returns the declared outputs in order', async () => {
    const { h, logs } = await host(DOUBLE);
    expect(h.warmup).toBe(true);
    const [y, nOut] = await h.execute([x(3)], { requests: [1, 2] });
    expect(y).toMatchObject({ name: 'y', datatype: 'FP32', shape: [3, 2] });
    expect(Array.from(y!.data as Float32Array)).toEqual([2, 2, 2, 2, 2, 2]);
    expect(Array.from(nOut!.data as Int32Array)).toEqual([0, 1, 1]);
    const only = await h.execute([x(1)], { requests: [1], outputs: ['n'] });
    expect(only.map((t) => t.name)).toEqual(['n']);
    await h.finalize();
    await h.finalize();
    expect(logs).toEqual([
      { level: 'info', msg: 'hello', fields: { threads: 2, err: { message: 'e', stack: expect.stringContaining('Error: e') }, big: '1' } },
      { level: 'warn', msg: 'bye', fields: undefined },
    ]);
    await expect(h.execute([x(1)], { requests: [1] })).rejects.toThrow(/finalized/);
  });

  it("checks what execute returns: each problem is the model's, named", async () => {
    const bad = async (ret: string): Promise<string> => {
      const { h } = await host(`import { defineModel } from '@tandem/sdk';
        export default defineModel({ execute({ x }) { const rows = x.shape[0]; return ${ret}; } });`);
      const e = await h.execute([x(2)], { requests: [2] }).then(
        () => undefined,
        (err: Error) => err,
      );
      expect(isInputError(e)).toBe(false);
      return (e as Error).message;
    };
    const ok = `y: { datatype: 'FP32', shape: [rows, 2], data: new Float32Array(rows * 2) }`;
    const okN = `n: { datatype: 'INT32', shape: [rows], data: new Int32Array(rows) }`;
    expect(await bad(`[1]`)).toMatch(/returned an array; it must return an object/);
    expect(await bad(`{ ${ok} }`)).toMatch(/no output 'n'/);
    expect(await bad(`{ ${ok}, ${okN}, z: 1 }`)).toMatch(/undeclared output 'z'/);
    expect(await bad(`{ ${ok}, n: { datatype: 'INT64', shape: [rows], data: new BigInt64Array(rows) } }`)).toMatch(/'n' has datatype INT64, declared INT32/);
    expect(await bad(`{ ${ok}, n: { datatype: 'INT32', shape: [rows + 1], data: new Int32Array(rows + 1) } }`)).toMatch(/'n' has 3 rows for a batch of 2/);
    expect(await bad(`{ y: { datatype: 'FP32', shape: [rows, 3], data: new Float32Array(rows * 3) }, ${okN} }`)).toMatch(
      /'y' has shape \[2,3\], declared \[-1,2\]/,
    );
    expect(await bad(`{ y: { datatype: 'FP32', shape: [rows, 2], data: [1, 2, 3, 4] }, ${okN} }`)).toMatch(
      /'y' is FP32: its data must be a Float32Array \(got an array\)/,
    );
    expect(await bad(`{ y: { datatype: 'FP32', shape: [rows, 2], data: new Float32Array(3) }, ${okN} }`)).toMatch(/'y' has 3 elements, shape \[2,2\] needs 4/);
  });

  it('BYTES outputs must be Uint8Array elements', async () => {
    const { h } = await host(
      `import { defineModel, bytesOf } from '@tandem/sdk';
       export default defineModel({ execute({ s }) { return { t: { datatype: 'BYTES', shape: s.shape, data: s.data.length === 1 ? ['no'] : bytesOf(['a', 'bc']) } }; } });`,
      { inputs: [{ name: 's', datatype: 'BYTES', shape: [-1] }], outputs: [{ name: 't', datatype: 'BYTES', shape: [-1] }] },
    );
    const s = (k: number): Tensor => ({ name: 's', datatype: 'BYTES', shape: [k], data: Array.from({ length: k }, () => new Uint8Array(0)) });
    const [t] = await h.execute([s(2)], { requests: [2] });
    expect(textOf(t!.data)).toEqual(['a', 'bc']);
    await expect(h.execute([s(1)], { requests: [1] })).rejects.toThrow(/element 0 is string, not a Uint8Array/);
  });

  it('an InputError stays one across the boundary; other errors keep message and stack', async () => {
    const { h } = await host(`import { defineModel, InputError } from '@tandem/sdk';
      export default defineModel({ execute({ x }) { if (x.shape[0] === 1) throw new InputError('x must have 2 rows'); throw new TypeError('kaput'); } });`);
    const input = await h.execute([x(1)], { requests: [1] }).catch((e: unknown) => errorReport(e));
    expect(input).toMatchObject({ input: true, message: 'x must have 2 rows' });
    const other = await h.execute([x(2)], { requests: [2] }).catch((e: unknown) => errorReport(e));
    expect(other).toMatchObject({ input: false, message: 'kaput', stack: expect.stringContaining('TypeError: kaput') });
    expect(isInputError(errorFromReport({ input: true, message: 'm' }))).toBe(true);
    expect(errorFromReport({ input: false, message: 'm' })).not.toBeInstanceOf(InputError);
  });

  it('fails to start with the reason: not a model, a throwing module, a throwing initialize', async () => {
    await expect(host(`export default { execute() { return {}; } };`)).rejects.toThrow(/default export must be defineModel.*it is a plain object/);
    await expect(host(`export const x = 1;`)).rejects.toThrow(/there is no default export/);
    await expect(host(`import { defineTask } from '@tandem/sdk'; export default defineTask({ run: (i) => i });`)).rejects.toThrow(/it is a task definition/);
    await expect(host(`throw new Error('top-level boom'); export default 1;`)).rejects.toThrow(/threw while loading: top-level boom/);
    const init = host(`import { defineModel } from '@tandem/sdk';
      export default defineModel({ initialize() { throw new Error('no weights'); }, execute() { return {}; } });`);
    await expect(init).rejects.toBeInstanceOf(HostInitError);
    await expect(init).rejects.toThrow('initialize failed: no weights');
  });

  it("ctx.infer carries what is left of the batch's deadline; info.signal aborts at it", async () => {
    const { h, calls } = await host(`import { defineModel } from '@tandem/sdk';
      export default defineModel({
        warmup: false,
        async initialize(ctx) { await ctx.infer('early', []); },
        async execute({ x }, _s, ctx, info) {
          await ctx.infer('callee', [x]);
          await new Promise((r) => setTimeout(r, 80));
          if (!info.signal.aborted) throw new Error('not aborted');
          await ctx.infer('late', [x]);
          return {};
        },
      });`);
    expect(h.warmup).toBe(false);
    const e = await h.execute([x(1)], { requests: [1], deadlineAt: Date.now() + 50 }).catch((err: Error) => err);
    expect((e as Error).message).toMatch(/ctx.infer\('late'\): the calling batch's deadline has passed/);
    expect(calls[0]).toEqual({ model: 'early', timeoutMs: undefined });
    expect(calls[1]!.model).toBe('callee');
    expect(calls[1]!.timeoutMs).toBeGreaterThan(30);
    expect(calls[1]!.timeoutMs).toBeLessThanOrEqual(50);
  });

  it('ctx.session opens an ONNX file beside the model on the given options and closes it at finalize', async () => {
    copyFileSync(realpathSync('models/ppocr_cls/1/model.onnx'), join(dir, 'cls.onnx'));
    const { h } = await host(
      `import { defineModel } from '@tandem/sdk';
       export default defineModel({
         async initialize(ctx) { return ctx.session('cls.onnx'); },
         async execute({ img }, s) { const out = await s.run({ x: img }); return { p: out[s.outputNames[0]] }; },
       });`,
      { inputs: [{ name: 'img', datatype: 'FP32', shape: [-1, 3, 48, 192] }], outputs: [{ name: 'p', datatype: 'FP32', shape: [-1, 2] }] },
    );
    const [p] = await h.execute([{ name: 'img', datatype: 'FP32', shape: [1, 3, 48, 192], data: new Float32Array(3 * 48 * 192) }], { requests: [1] });
    expect(p!.shape).toEqual([1, 2]);
    const probs = Array.from(p!.data as Float32Array);
    expect(probs[0]! + probs[1]!).toBeCloseTo(1, 5);
    await h.finalize();
  });
});
