import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import { configureGpuProcess, type UnitRunner } from '@tandem/inference';
import { BatchCapacity, silentLogger, type AcquireRequest, type Preemptible, type UnitSlot } from '@tandem/scheduler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIdentityModel } from '../../../../scripts/generate-models';
import type { BatchConfig } from '../config/batch.config';
import { UnitPool } from './unit-pool';

/** Field 3 of /proc/<pid>/stat: R running, S sleeping, T stopped. */
const stat = (pid: number): string => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[0]!;
const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

/** A real (fixed-mode) BatchCapacity; the test plays the ledger's part in a revocation through the run's preemption hook. */
class RevocableCapacity extends BatchCapacity {
  last: Preemptible | undefined;
  override acquire(req: AcquireRequest): ReturnType<BatchCapacity['acquire']> {
    this.last = req.preempt;
    return super.acquire(req);
  }
}

describe('UnitPool: unit processes across runs', () => {
  let repo: string;
  let capacity: RevocableCapacity;
  let pool: UnitPool;
  const x = { name: 'in_FP32', datatype: 'FP32' as const, shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) };

  beforeAll(() => {
    repo = mkdtempSync(join(tmpdir(), 'tandem-pool-'));
    mkdirSync(join(repo, 'ident', '1'), { recursive: true });
    writeFileSync(join(repo, 'ident', '1', 'model.onnx'), buildIdentityModel(['FP32']));
    writeFileSync(join(repo, 'ident', 'config.json'), JSON.stringify({ max_batch_size: 8 }));
    capacity = new RevocableCapacity(
      { mode: 'fixed', deviceKind: 'cpu', maxUnits: 1, borrowHoldDownMs: 0, retryMs: 50, idleReleaseMs: 60_000, gpuMemoryMiB: 0 },
      silentLogger,
      null,
    );
    const cfg = { modelRepository: repo, jobs: { deviceKind: 'cpu', unitCpuPolicy: 'inherit' } } as unknown as BatchConfig;
    pool = new UnitPool(cfg, capacity, new Logger('test'));
    pool.repository();
  });
  afterAll(async () => {
    await pool.close();
    await capacity.stop();
    rmSync(repo, { recursive: true, force: true });
  });

  it('a process stopped by a revocation that landed after its answer is continued before the next run takes it (no stall)', async () => {
    const idle: UnitRunner[] = [];
    const req = { mayBorrow: true, priority: 0, signal: new AbortController().signal };
    let pid = -1;
    const first = await pool.withUnit('ident', idle, req, async (unit) => {
      pid = unit.pid;
      const out = await unit.run('ident', [x]);
      // The revocation arrives now: BatchCapacity stops the run's process (SIGSTOP) and requeues it,
      // but the answer is already here and the run ends.
      capacity.last!.suspend();
      await sleep(20);
      expect(stat(pid)).toBe('T');
      return out;
    });
    expect(Array.from(first[0]!.data as Float32Array)).toEqual([1, 2, 3, 4]);
    expect(idle.map((u) => u.pid)).toEqual([pid]);
    await sleep(20);
    expect(stat(pid)).not.toBe('T'); // the idle process runs again

    // The next run takes the same process and is answered (before the fix it waited forever on a stopped process).
    const answered = await Promise.race([
      pool.withUnit('ident', idle, req, async (unit) => ({ pid: unit.pid, out: await unit.run('ident', [x]) })),
      sleep(20_000).then(() => null),
    ]);
    expect(answered?.pid).toBe(pid);
    expect(Array.from(answered!.out[0]!.data as Float32Array)).toEqual([1, 2, 3, 4]);
  });

  it('a unit answers raw batch-file lines: runs, per-line errors, duplicates and a foreign url, in line order', async () => {
    const idle: UnitRunner[] = [];
    const req = { mayBorrow: true, priority: 0, signal: new AbortController().signal };
    const body = (v: number[]): string => JSON.stringify({ id: `q${v[0]}`, inputs: [{ name: 'in_FP32', datatype: 'FP32', shape: [1, 2], data: v }] });
    const text = [
      `{"custom_id":"a","method":"POST","url":"/v2/models/ident/infer","body":${body([1, 2])}}`,
      `  \r`,
      `{"custom_id":"b","method":"POST","url":"/v2/models/ident/infer","body":${body([3, 4])}}  `,
      `{"custom_id":"a","method":"POST","url":"/v2/models/ident/infer","body":${body([5, 6])}}`,
      `{"custom_id":"c","method":"GET","url":"/v2/models/ident/infer","body":{}}`,
      `not json`,
      `{"custom_id":"d","method":"POST","url":"/v2/models/other/infer","body":${body([7, 8])}}`,
      `{"custom_id":"e","method":"POST","url":"/v2/models/ident/infer","body":{"inputs":[{"name":"in_FP32","datatype":"FP32","shape":[2],"data":[1,2]}]}}`,
    ].join('\n');
    const data = new TextEncoder().encode(text);
    const ends: number[] = [];
    const lines: number[] = [];
    let at = 0;
    text.split('\n').forEach((l, i) => {
      at += Buffer.byteLength(l) + (i > 0 ? 1 : 0);
      if (l.trim() !== '') [lines[lines.length], ends[ends.length]] = [i + 10, at];
    });
    const answers = await pool.withUnit('ident', idle, req, (unit) =>
      unit.runLines({ endpoint: '/v2/models/ident/infer', model: 'ident', data, lines, ends, duplicates: [13], maxRows: 8 }),
    );
    expect(answers.map((a) => a.line)).toEqual([10, 12, 13, 14, 15, 16, 17]);
    const ok = (a: (typeof answers)[number]): unknown => ('body' in a ? JSON.parse(a.body) : a);
    expect(ok(answers[0]!)).toEqual({
      model_name: 'ident',
      model_version: '1',
      id: 'q1',
      outputs: [{ name: 'out_FP32', datatype: 'FP32', shape: [1, 2], data: [1, 2] }],
    });
    expect(ok(answers[1]!)).toEqual({
      model_name: 'ident',
      model_version: '1',
      id: 'q3',
      outputs: [{ name: 'out_FP32', datatype: 'FP32', shape: [1, 2], data: [3, 4] }],
    });
    expect(answers[2]).toEqual({ line: 13, customId: 'a', status: 400, message: 'duplicate custom_id "a": an earlier line uses it' });
    expect(answers[3]).toEqual({ line: 14, customId: 'c', status: 400, message: 'method must be "POST" (got "GET")' });
    expect(answers[4]).toMatchObject({ line: 15, customId: null, status: 400 });
    expect((answers[4] as { message: string }).message).toMatch(/^line 15 is not valid JSON: /);
    expect(answers[5]).toEqual({ line: 16, customId: 'd', url: '/v2/models/other/infer' });
    expect(answers[6]).toMatchObject({ line: 17, customId: 'e', status: 400 });
    expect((answers[6] as { message: string }).message).toContain('in_FP32');
  });
});

describe('UnitPool: GPU units are processes pinned to their one device', () => {
  let repo: string;
  const MIG = 'MIG-9e80e24b-6f5d-4c2e-9a7b-0d1e2f7a4b5c';
  const x = { name: 'in_FP32', datatype: 'FP32' as const, shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) };
  const environ = (pid: number): Record<string, string> =>
    Object.fromEntries(
      readFileSync(`/proc/${pid}/environ`, 'utf8')
        .split('\0')
        .filter((kv) => kv.includes('='))
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );

  /** The ledger's part: hands out the slot the test names, records what was asked, and lets the test make a unit go. */
  function fakeCapacity(next: () => UnitSlot): { capacity: BatchCapacity; asked: AcquireRequest[]; gone: (id: string) => Promise<void> } {
    const asked: AcquireRequest[] = [];
    let onGone: (id: string) => Promise<void> | void = () => undefined;
    const capacity = {
      acquire: async (req: AcquireRequest) => (asked.push(req), next()),
      release: () => undefined,
      onUnitGone: (fn: typeof onGone) => void (onGone = fn),
      onFastStop: () => undefined,
      pidSlots: () => null,
    } as unknown as BatchCapacity;
    return { capacity, asked, gone: async (id) => onGone(id) };
  }

  beforeAll(() => {
    repo = mkdtempSync(join(tmpdir(), 'tandem-pool-gpu-'));
    mkdirSync(join(repo, 'ident', '1'), { recursive: true });
    writeFileSync(join(repo, 'ident', '1', 'model.onnx'), buildIdentityModel(['FP32']));
    writeFileSync(join(repo, 'ident', 'config.json'), JSON.stringify({ max_batch_size: 8, device: { kind: 'gpu', memory_mib: 3000 } }));
    configureGpuProcess({ simulated: { msPerBatch: 1, baseMiB: 16 } });
  });
  afterAll(() => {
    configureGpuProcess({});
    rmSync(repo, { recursive: true, force: true });
  });

  it("runs on a MIG instance in a process that sees only it (by UUID), asks for the model's declared memory, and ends with its unit", async () => {
    let slot: UnitSlot = { unit: 0, unitId: 'u1', borrowed: true, placement: { kind: 'cuda', deviceId: 0, uuid: MIG, memoryMiB: 3000 } };
    const { capacity, asked, gone } = fakeCapacity(() => slot);
    const pool = new UnitPool(
      { modelRepository: repo, jobs: { deviceKind: 'gpu', unitCpuPolicy: 'idle' } } as unknown as BatchConfig,
      capacity,
      new Logger('test'),
    );
    const req = { mayBorrow: true, priority: 0, signal: new AbortController().signal };
    try {
      const first = await pool.withUnit('ident', [], req, async (unit) => ({ pid: unit.pid, out: await unit.run('ident', [x]) }));
      expect(first.pid).not.toBe(process.pid);
      expect(environ(first.pid)).toMatchObject({ CUDA_VISIBLE_DEVICES: MIG, CUDA_DEVICE_ORDER: 'PCI_BUS_ID' });
      expect(Array.from(first.out[0]!.data as Float32Array)).toEqual([1, 2, 3, 4]); // the simulated session's real outputs
      expect(asked.map((a) => a.memoryMiB)).toEqual([3000]);
      // The next run on the same unit takes the same process.
      expect(await pool.withUnit('ident', [], req, async (unit) => unit.pid)).toBe(first.pid);
      // The unit goes (revoked, idle): its process has ended when the listener returns.
      await gone('u1');
      expect(() => readFileSync(`/proc/${first.pid}/stat`)).toThrow(/ENOENT/);

      // A whole GPU without a UUID is pinned by index; an allocation too small for the session fails it with CUDA's OOM error.
      slot = { unit: 0, unitId: 'u2', borrowed: false, placement: { kind: 'cuda', deviceId: 5, uuid: null, memoryMiB: 3000 } };
      const pid = await pool.withUnit('ident', [], req, async (unit) => (await unit.run('ident', [x]), unit.pid));
      expect(environ(pid)).toMatchObject({ CUDA_VISIBLE_DEVICES: '5' });
      slot = { unit: 0, unitId: 'u3', borrowed: false, placement: { kind: 'cuda', deviceId: 5, uuid: null, memoryMiB: 10 } };
      await expect(pool.withUnit('ident', [], req, (unit) => unit.run('ident', [x]))).rejects.toThrow(/out of memory.*the allocation holds 10 MiB/);
    } finally {
      await pool.close();
    }
  });
});
