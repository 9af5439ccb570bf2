import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { bytesOf, isInputError, textOf, type Tensor } from '@tandem/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIdentityModel } from '../../../../scripts/generate-models';
import { ModelRepository } from '../model-repository';
import { repositoryUnitResolver } from './unit-resolver';
import { schedIdleLauncher } from './unit-process';
import { UnitRunner } from './unit-runner';
import type { UnitItemsDecoder } from './unit.wire';

/** A node model that calls an ONNX model through ctx.infer: y = 2 * ident(x), label = tag + ':' + sum of the row. */
const PIPELINE = `
import { defineModel, bytesOf, textOf } from '@tandem/sdk';
export default defineModel({
  async execute({ x, tag }, _s, ctx, info) {
    const { out_FP32 } = await ctx.infer('ident', [{ name: 'in_FP32', datatype: 'FP32', shape: x.shape, data: x.data }]);
    const y = (out_FP32.data as Float32Array).map((v) => 2 * v);
    const tags = textOf(tag.data);
    const labels = tags.map((t, r) => t + ':' + (y[2 * r] + y[2 * r + 1]) / 2 + ':' + process.pid + ':' + info.requests.length);
    return { y: { datatype: 'FP32', shape: x.shape, data: y }, label: { datatype: 'BYTES', shape: tag.shape, data: bytesOf(labels) } };
  },
});
`;

/** Field 3 of /proc/<pid>/stat: R running, S sleeping, T stopped. */
/** Calls the ONNX model with numbers where a Float32Array belongs. */
const BADCALL = `
import { defineModel } from '@tandem/sdk';
export default defineModel({
  async execute({ x }, _s, ctx) {
    await ctx.infer('ident', [{ name: 'in_FP32', datatype: 'FP32', shape: x.shape, data: Array.from(x.data) }]);
    return { y: x };
  },
});
`;

const stat = (pid: number): string => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[0]!;
/** Scheduling policy of the process (0 SCHED_OTHER, 5 SCHED_IDLE). */
const policy = (pid: number): number => Number(/^policy\s*:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/sched`, 'utf8'))![1]);
const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

describe('UnitRunner: a batch unit runs ONNX and node models, and what node models call, inside itself', () => {
  let repo: string;
  let models: ModelRepository;
  const runners: UnitRunner[] = [];
  const x: Tensor = { name: 'x', datatype: 'FP32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) };
  const tag: Tensor = { name: 'tag', datatype: 'BYTES', shape: [2, 1], data: bytesOf(['a', 'é']) };

  beforeAll(() => {
    repo = mkdtempSync(join(tmpdir(), 'tandem-unit-'));
    mkdirSync(join(repo, 'ident', '1'), { recursive: true });
    writeFileSync(join(repo, 'ident', '1', 'model.onnx'), buildIdentityModel(['FP32']));
    writeFileSync(join(repo, 'ident', 'config.json'), JSON.stringify({ max_batch_size: 8 }));
    mkdirSync(join(repo, 'pipe', '1'), { recursive: true });
    writeFileSync(join(repo, 'pipe', '1', 'model.ts'), PIPELINE);
    const io = (n: string, datatype: string, w: number) => ({ name: n, datatype, shape: [-1, w] });
    writeFileSync(
      join(repo, 'pipe', 'config.json'),
      JSON.stringify({
        backend: 'node',
        max_batch_size: 8,
        inputs: [io('x', 'FP32', 2), io('tag', 'BYTES', 1)],
        outputs: [io('y', 'FP32', 2), io('label', 'BYTES', 1)],
      }),
    );
    mkdirSync(join(repo, 'badcall', '1'), { recursive: true });
    writeFileSync(join(repo, 'badcall', '1', 'model.ts'), BADCALL);
    writeFileSync(
      join(repo, 'badcall', 'config.json'),
      JSON.stringify({ backend: 'node', max_batch_size: 8, inputs: [io('x', 'FP32', 2)], outputs: [io('y', 'FP32', 2)] }),
    );
    models = new ModelRepository(repo);
  });
  afterAll(async () => {
    await Promise.all(runners.map((r) => r.release()));
    rmSync(repo, { recursive: true, force: true });
  });

  const start = async (transport: 'process' | 'thread', cpu: 'idle' | 'inherit' = 'inherit', itemDecoder?: UnitItemsDecoder): Promise<UnitRunner> => {
    const r = await UnitRunner.start({
      transport,
      placement: { kind: 'cpu', intraOpThreads: 1 },
      policy: cpu,
      resolve: repositoryUnitResolver(models),
      itemDecoder,
    });
    runners.push(r);
    return r;
  };

  it('in a unit process: the node model and the ONNX model it calls both run in the process, and stop with it', async () => {
    const r = await start('process');
    expect(await r.open('pipe')).toMatchObject({ name: 'pipe', version: '1', maxBatchSize: 8 });
    const [y, label] = await r.run('pipe', [x, tag]);
    expect(Array.from(y!.data as Float32Array)).toEqual([2, 4, 6, 8]);
    expect(textOf(label!.data)).toEqual([`a:3:${r.pid}:1`, `é:7:${r.pid}:1`]);
    const [direct] = await r.run('ident', [{ ...x, name: 'in_FP32' }]);
    expect(Array.from(direct!.data as Float32Array)).toEqual([1, 2, 3, 4]);

    r.suspend();
    await sleep(5);
    expect(stat(r.pid)).toBe('T');
    let done = false;
    const pending = r.run('pipe', [x, tag]).then((o) => ((done = true), o));
    await sleep(200);
    expect(done).toBe(false);
    r.resume();
    expect(Array.from((await pending)[0]!.data as Float32Array)).toEqual([2, 4, 6, 8]);
  });

  it('a unit process runs under SCHED_IDLE when asked', async () => {
    const r = await start('process', 'idle');
    expect(schedIdleLauncher()).toBe('chrt');
    expect(policy(r.pid)).toBe(5);
    expect(Array.from((await r.run('pipe', [x, tag]))[0]!.data as Float32Array)).toEqual([2, 4, 6, 8]);
  });

  it('in a worker thread (how a GPU unit runs), the same answers', async () => {
    const r = await start('thread');
    const [y, label] = await r.run('pipe', [x, tag]);
    expect(Array.from(y!.data as Float32Array)).toEqual([2, 4, 6, 8]);
    expect(textOf(label!.data)).toEqual([`a:3:${process.pid}:1`, `é:7:${process.pid}:1`]);
  });

  it('runLines takes a view of a bigger buffer: a process and a thread unit answer its lines only, and the caller keeps its buffer', async () => {
    const row = (v: number): string => `[${Array.from({ length: 8 }, (_, i) => String((i + v) % 3)).join(',')}]`;
    const line = (id: string, v: number): string =>
      `{"custom_id":"${id}","method":"POST","url":"/v2/models/ident/infer","body":{"inputs":[{"name":"in_FP32","datatype":"FP32","shape":[4,2],"data":${row(v)}}]}}`;
    const text = [line('before', 9), line('a', 0), line('b', 1), line('after', 2)].join('\n');
    // A Buffer over an ArrayBuffer of its own, as a chunk read gives (a pooled one could not be moved at all).
    const all = Buffer.from(new Uint8Array(Buffer.from(text)).buffer);
    const from = text.indexOf('\n') + 1;
    const to = text.lastIndexOf('\n');
    const view = all.subarray(from, to);
    const ends = [Buffer.byteLength(line('a', 0)), to - from];
    for (const transport of ['process', 'thread'] as const) {
      const r = await start(transport);
      const answers = await r.runLines({ endpoint: '/v2/models/ident/infer', model: 'ident', data: view, lines: [2, 3], ends, duplicates: [], maxRows: 8 });
      expect(answers.map((a) => [a.line, a.customId])).toEqual([
        [2, 'a'],
        [3, 'b'],
      ]);
      const data = answers.map((a) => (JSON.parse((a as { body: string }).body) as { outputs: { data: number[] }[] }).outputs[0]!.data);
      expect(data).toEqual([JSON.parse(row(0)), JSON.parse(row(1))]);
      expect(data[0]).toEqual([0, 1, 2, 0, 1, 2, 0, 1]);
      expect([all.byteLength, view.byteLength, Buffer.from(all).toString()]).toEqual([Buffer.byteLength(text), to - from, text]);
    }
  });

  it('runNdjsonItems: the unit parses a view of NDJSON lines (blank lines and a BOM too) and checks their count', async () => {
    // Items are [a, b] rows; the decoder (shipped as source) stacks them into in_FP32.
    const decoder: UnitItemsDecoder = (items, inputs) => [
      { name: inputs[0]!.name, datatype: 'FP32', shape: [items.length, 2], data: Float32Array.from((items as number[][]).flat()) },
    ];
    const inputs = [{ name: 'in_FP32', datatype: 'FP32' as const, itemShape: [2], perItem: 2 }];
    const text = '[9,9]\n\ufeff[1,2]\n\n [3,4]\n[5,6]\n[7,7]';
    const all = Buffer.from(new Uint8Array(Buffer.from(text)).buffer);
    const view = all.subarray(Buffer.byteLength('[9,9]\n'), all.length - '\n[7,7]'.length);
    for (const transport of ['process', 'thread'] as const) {
      const r = await start(transport, 'inherit', decoder);
      const [y] = await r.runNdjsonItems('ident', view, 3, inputs);
      expect([y!.shape, Array.from(y!.data as Float32Array)]).toEqual([
        [3, 2],
        [1, 2, 3, 4, 5, 6],
      ]);
      await expect(r.runNdjsonItems('ident', view, 4, inputs)).rejects.toThrow('chunk range holds 3 items, expected 4');
      expect(Buffer.from(all).toString()).toBe(text);
    }
  });

  it('errors: a bad input is the run’s error; an unknown model or a bad ctx.infer call fails the run with its reason', async () => {
    const r = await start('process');
    await expect(r.run('pipe', [x])).rejects.toThrow(/missing input 'tag'/);
    await expect(r.open('nope')).rejects.toThrow(/unknown model 'nope'/);
    await expect(r.run('ident', [{ ...x, name: 'in_FP32', shape: [1, 4] }])).rejects.toThrow(/shape \[1,4\]/);
    const bad = await r.run('badcall', [x]).catch((e: unknown) => e);
    expect(isInputError(bad)).toBe(true);
    expect((bad as Error).message).toMatch(/model 'ident': input 'in_FP32' is FP32: its data must be a Float32Array \(got an array\)/);
    expect(r.alive).toBe(true);
    expect(policy(r.pid)).toBe(0);
  });

  it('kill abandons a stopped run: the caller gets an error, not a hang', async () => {
    const r = await UnitRunner.start({
      transport: 'process',
      placement: { kind: 'cpu', intraOpThreads: 1 },
      policy: 'inherit',
      resolve: repositoryUnitResolver(models),
    });
    r.suspend();
    const pending = r.run('pipe', [x, tag]);
    r.kill();
    await expect(pending).rejects.toThrow(/unit process exited \(SIGKILL\)/);
    expect(r.alive).toBe(false);
  });

  it('a stopped unit process dies with its parent (no orphan left stopped forever)', async () => {
    // A parent process (from dist/) that starts a unit, stops it, prints the unit's pid and waits to be killed.
    const script = `
      const { UnitRunner, ModelRepository, repositoryUnitResolver } = require(${JSON.stringify(resolve('dist/libs/inference/src/index.js'))});
      const resolve = repositoryUnitResolver(new ModelRepository(${JSON.stringify(repo)}));
      UnitRunner.start({ transport: 'process', placement: { kind: 'cpu', intraOpThreads: 1 }, policy: 'idle', resolve })
        .then((r) => r.open('ident').then(() => { r.suspend(); console.log(r.pid); }));
      setInterval(() => undefined, 1000);`;
    const parent = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = Number(await new Promise<string>((res) => parent.stdout!.once('data', (d: Buffer) => res(d.toString().trim()))));
    await sleep(20);
    expect(stat(pid)).toBe('T');
    parent.kill('SIGKILL');
    await new Promise((res) => parent.once('exit', res));
    const deadline = Date.now() + 2_000;
    while (existsSync(`/proc/${pid}`) && stat(pid) !== 'Z' && Date.now() < deadline) await sleep(20);
    expect(existsSync(`/proc/${pid}`) ? stat(pid) : 'gone').toMatch(/^(gone|Z)$/);
  });
});
