import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from './model-config';
import { ProcessModelRunner, schedIdleLauncher } from './process-model-runner';

const MODEL = 'models/ppocr_cls/1/model.onnx';
const config = parseModelConfig(JSON.parse(readFileSync('models/ppocr_cls/config.json', 'utf8')), 'ppocr_cls');
/** Field 3 of /proc/<pid>/stat: R running, S sleeping, T stopped. */
const state = (pid: number): string => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[0]!;
/** Scheduling policy of the process (0 SCHED_OTHER, 5 SCHED_IDLE). */
const policy = (pid: number): number => Number(/^policy\s*:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/sched`, 'utf8'))![1]);
const input = (n: number): { name: string; datatype: 'FP32'; shape: number[]; data: Float32Array } => {
  const data = new Float32Array(n * 3 * 48 * 192);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 7919) % 255) / 127.5 - 1;
  return { name: 'x', datatype: 'FP32', shape: [n, 3, 48, 192], data };
};

describe('ProcessModelRunner (a batch unit in a process of its own)', () => {
  const runners: ProcessModelRunner[] = [];
  afterAll(async () => {
    await Promise.all(runners.map((r) => r.release()));
  });

  it('runs the model like an in-thread session, under SCHED_IDLE', async () => {
    const r = await ProcessModelRunner.load(MODEL, config, { policy: 'idle' });
    runners.push(r);
    expect(schedIdleLauncher()).toBe('chrt');
    expect(policy(r.pid)).toBe(5);
    const [out] = await r.run([input(4)]);
    expect(out!.shape).toEqual([4, 2]);
    const probs = out!.data as Float32Array;
    for (let i = 0; i < 4; i++) expect(probs[2 * i]! + probs[2 * i + 1]!).toBeCloseTo(1, 4);
    const inherit = await ProcessModelRunner.load(MODEL, config, { policy: 'inherit' });
    runners.push(inherit);
    expect(policy(inherit.pid)).toBe(0);
  });

  it('suspend stops the process mid-run; resume lets the same run finish with the same answer', async () => {
    const r = await ProcessModelRunner.load(MODEL, config, { policy: 'inherit' });
    runners.push(r);
    const [ref] = await r.run([input(64)]);
    const pending = r.run([input(64)]);
    await new Promise((res) => setTimeout(res, 10)); // the run is in onnxruntime now
    r.suspend();
    // The kernel stops every thread before the signal call returns; give /proc a moment to show it.
    await new Promise((res) => setTimeout(res, 5));
    expect(state(r.pid)).toBe('T');
    let done = false;
    void pending.then(() => (done = true));
    await new Promise((res) => setTimeout(res, 300)); // a 64-item run takes well under 300 ms on a core
    expect(done).toBe(false);
    r.resume();
    const [out] = await pending;
    expect(state(r.pid)).not.toBe('T');
    expect(Array.from(out!.data as Float32Array)).toEqual(Array.from(ref!.data as Float32Array));
  });

  it('runItems: the process decodes raw items with the decoder it was given, same answer as the tensor', async () => {
    // A self-contained decoder (it travels as source): 8-bit pixels to [-1, 1].
    const decoder = (item: unknown, perItem: number, out: Float32Array, offset: number): void => {
      const b = Buffer.from((item as { u8: string }).u8, 'base64');
      for (let i = 0; i < perItem; i++) out[offset + i] = b[i]! / 127.5 - 1;
    };
    const r = await ProcessModelRunner.load(MODEL, config, { policy: 'inherit', itemDecoder: decoder });
    runners.push(r);
    const per = 3 * 48 * 192;
    const pixels = Buffer.from(Array.from({ length: 3 * per }, (_, i) => (i * 31) % 256));
    const items = [0, 1, 2].map((k) => ({ u8: pixels.subarray(k * per, (k + 1) * per).toString('base64') }));
    const data = new Float32Array(3 * per);
    items.forEach((it, j) => decoder(it, per, data, j * per));
    const [viaTensor] = await r.run([{ name: 'x', datatype: 'FP32', shape: [3, 3, 48, 192], data }]);
    const [viaItems] = await r.runItems(items, { name: 'x', itemShape: [3, 48, 192], perItem: per });
    expect(viaItems!.shape).toEqual([3, 2]);
    expect(Array.from(viaItems!.data as Float32Array)).toEqual(Array.from(viaTensor!.data as Float32Array));
  });

  it('kill abandons a stopped run: the caller gets an error, not a hang', async () => {
    const r = await ProcessModelRunner.load(MODEL, config, { policy: 'inherit' });
    const pending = r.run([input(64)]);
    r.suspend();
    r.kill();
    await expect(pending).rejects.toThrow(/unit process exited \(SIGKILL\)/);
    expect(r.alive).toBe(false);
  });

  it('a stopped unit process dies with its parent (no orphan left stopped forever)', async () => {
    // A parent process that starts a unit, stops it, prints the unit's pid and waits to be killed.
    const script = `
      const { ProcessModelRunner, parseModelConfig } = require(${JSON.stringify(resolve('dist/libs/inference/src/index.js'))});
      const cfg = parseModelConfig(${JSON.stringify(JSON.parse(readFileSync('models/ppocr_cls/config.json', 'utf8')))}, 'ppocr_cls');
      ProcessModelRunner.load(${JSON.stringify(resolve(MODEL))}, cfg, { policy: 'idle' }).then((r) => { r.suspend(); console.log(r.pid); });
      setInterval(() => undefined, 1000);`;
    const parent = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = Number(await new Promise<string>((res) => parent.stdout!.once('data', (d: Buffer) => res(d.toString().trim()))));
    await new Promise((res) => setTimeout(res, 20));
    expect(state(pid)).toBe('T');
    parent.kill('SIGKILL');
    await new Promise((res) => parent.once('exit', res));
    const deadline = Date.now() + 2_000;
    while (existsSync(`/proc/${pid}`) && state(pid) !== 'Z' && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    expect(existsSync(`/proc/${pid}`) ? state(pid) : 'gone').toMatch(/^(gone|Z)$/);
  });

  it('a model that cannot load fails with the reason and leaves no process', async () => {
    await expect(ProcessModelRunner.load('/nonexistent/model.onnx', config, { policy: 'inherit' })).rejects.toThrow(/cannot load \/nonexistent\/model.onnx/);
  });
});
