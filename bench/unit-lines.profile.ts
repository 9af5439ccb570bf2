/**
 * CPU per batch-file line in one batch unit process vs the model's own CPU per image, in the same
 * run and the same process (same ppocr_cls session, same session options as the worker's units).
 *
 *   npm run build && node dist/bench/unit-lines.profile.js
 *
 * Env (bench only): UNIT_LINES (lines per round, default 1024), UNIT_ROUNDS (3), UNIT_CALL (lines
 * per runLines call = the worker's BATCH_INFER_BATCH, 32), UNIT_MAX_ROWS (rows per model batch in
 * the unit, as the worker: min(16, UNIT_CALL)), UNIT_RAW_BATCH (rows per raw call; default: the cheapest
 * per image of a sweep over 1/8/16/32/64 run first, in the same unit),
 * UNIT_PROF_DIR (writes a --cpu-prof of the unit process there and prints its top functions),
 * UNIT_THREADS2=1 (also sweep a 2-thread session, the bench's raw baseline), UNIT_VALUES=floats (float pixels instead of {-1, 0, 1}), UNIT_REPO (model repository, ./models), UNIT_LINE_WORK=0 (skip the in-process line-work rounds).
 *
 * CPU is the unit process's utime+stime from /proc/<pid>/stat (every thread: onnxruntime's too)
 * and this process's process.cpuUsage() (what the batch app's main thread pays per line: cutting
 * the task's bytes and the IPC), not wall time: the box is shared.
 */
import { execSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  answerLines,
  ModelRepository,
  repositoryUnitResolver,
  UnitRunner,
  type InferTensor,
  type LinesModel,
  type UnitLineAnswer,
  type UnitLinesTask,
} from '@tandem/inference';
import { procStat } from './support/proc-stat';

const num = (name: string, dflt: number): number => (process.env[name] ? Number(process.env[name]) : dflt);
const LINES = num('UNIT_LINES', 1024);
const ROUNDS = num('UNIT_ROUNDS', 3);
const CALL = num('UNIT_CALL', 32);
const MAX_ROWS = num('UNIT_MAX_ROWS', Math.min(16, CALL));
const PROF_DIR = process.env.UNIT_PROF_DIR;
const REPO = resolve(process.env.UNIT_REPO ?? 'models');
const ENDPOINT = '/v2/models/ppocr_cls/infer';
const PER_ITEM = 3 * 48 * 192;
const TICK_MS = 1000 / Number(execSync('getconf CLK_TCK').toString().trim());

/** The bench's file lines (bench/support/ndjson-upload.ts oipLines): 16 images of {-1, 0, 1}, ~65 KB each. */
function images(): Float32Array[] {
  // UNIT_VALUES=floats: normalized pixels as float32 printed as doubles (numpy's tolist(): ~17 digits, ~520 KB a line).
  const floats = process.env.UNIT_VALUES === 'floats';
  return Array.from({ length: 16 }, (_, v) =>
    Float32Array.from({ length: PER_ITEM }, (_, i) => (floats ? ((i * 7 + v * 13) % 256) / 127.5 - 1 : ((i * 7 + v * 13) % 3) - 1)),
  );
}
function fileBytes(imgs: Float32Array[], count: number): { bytes: Buffer; ends: number[] } {
  const tails = imgs.map(
    (d) =>
      `","method":"POST","url":"${ENDPOINT}","body":{"inputs":[{"name":"x","shape":[1,3,48,192],"datatype":"FP32","data":[${Array.from(d).join(',')}]}]}}\n`,
  );
  const parts: Buffer[] = [];
  const ends: number[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const b = Buffer.from(`{"custom_id":"r${i}${tails[i % 16]!}`);
    parts.push(b);
    at += b.length;
    ends.push(at - 1); // without the newline, as chunkLines cuts them
  }
  return { bytes: Buffer.concat(parts), ends };
}

/** The worker's FileInferRunner.task: a view of a call's lines (UNIT_TASK_COPY=1: a copy of their own, as before). */
function task(bytes: Buffer, ends: number[], from: number, to: number): UnitLinesTask {
  const base = from === 0 ? 0 : ends[from - 1]! + 1;
  const view = bytes.subarray(base, ends[to - 1]!);
  const data = process.env.UNIT_TASK_COPY === '1' ? Uint8Array.from(view) : view;
  const lines = Array.from({ length: to - from }, (_, k) => from + k + 1);
  return { endpoint: ENDPOINT, model: 'ppocr_cls', data, lines, ends: ends.slice(from, to).map((e) => e - base), duplicates: [], maxRows: MAX_ROWS };
}

const childStat = (pid: number): string[] => procStat(pid)!;
const childCpuMs = (pid: number): number => {
  const f = childStat(pid);
  return (Number(f[11]) + Number(f[12])) * TICK_MS; // fields 14, 15: utime, stime
};
const childSysMs = (pid: number): number => Number(childStat(pid)[12]) * TICK_MS;
const selfCpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

interface Cost {
  unitMs: number;
  /** Of which in the kernel (page faults of fresh buffers, the channel's copies). */
  unitSysMs: number;
  mainMs: number;
  wallMs: number;
}

/** Runs `fn`, adding its unit CPU, this process's CPU and wall time (ms) to `into`. */
async function charge(unit: UnitRunner, into: Cost, fn: () => Promise<void>): Promise<void> {
  const c0 = childCpuMs(unit.pid);
  const k0 = childSysMs(unit.pid);
  const s0 = selfCpuMs();
  const t0 = performance.now();
  await fn();
  into.unitMs += childCpuMs(unit.pid) - c0;
  into.unitSysMs += childSysMs(unit.pid) - k0;
  into.mainMs += selfCpuMs() - s0;
  into.wallMs += performance.now() - t0;
}

const per = (c: Cost, n: number): Cost => ({ unitMs: c.unitMs / n, unitSysMs: c.unitSysMs / n, mainMs: c.mainMs / n, wallMs: c.wallMs / n });

/** Self time per function of a .cpuprofile, top `n`. */
function topFunctions(file: string, n: number): string[] {
  const p = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const self = new Map<string, number>();
  p.samples.forEach((id, i) => {
    const cf = byId.get(id)!.callFrame;
    const key = `${cf.functionName || '(anonymous)'} ${cf.url.split('/').slice(-1)[0] ?? ''}:${cf.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, ms]) => `${ms.toFixed(0).padStart(7)} ms ${((100 * ms) / total).toFixed(1).padStart(5)} %  ${k}`);
}

async function main(): Promise<void> {
  if (PROF_DIR) mkdirSync(PROF_DIR, { recursive: true });
  const repo = new ModelRepository(REPO);
  // As the worker starts them (UnitPool.takeProcess): one core, one intra-op thread, the repository's session options.
  const unit = await UnitRunner.start({
    transport: 'process',
    placement: { kind: 'cpu', intraOpThreads: 1 },
    policy: 'inherit',
    resolve: repositoryUnitResolver(repo),
    ...(PROF_DIR ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${PROF_DIR}`] } : {}),
  });
  const imgs = images();
  const { bytes, ends } = fileBytes(imgs, LINES);
  const rawOf = (rows: number): InferTensor[] => {
    const data = new Float32Array(rows * PER_ITEM);
    for (let r = 0; r < rows; r++) data.set(imgs[r % 16]!, r * PER_ITEM);
    return [{ name: 'x', datatype: 'FP32', shape: [rows, 3, 48, 192], data }];
  };
  /** CPU and wall per image of each batch size on `u`, the sizes interleaved; the cheapest size. */
  const sweep = async (u: UnitRunner, label: string): Promise<number> => {
    const sizes = [1, 8, 16, 32, 64];
    const inputs = sizes.map(rawOf);
    const cost = sizes.map(() => 0);
    const wall = sizes.map(() => 0);
    for (const x of inputs) await u.run('ppocr_cls', x);
    for (let cycle = 0; cycle < 3; cycle++) {
      for (let k = 0; k < sizes.length; k++) {
        const c0 = childCpuMs(u.pid);
        const t0 = performance.now();
        for (let done = 0; done < 128; done += sizes[k]!) await u.run('ppocr_cls', inputs[k]!);
        cost[k]! += (childCpuMs(u.pid) - c0) / (3 * 128);
        wall[k]! += (performance.now() - t0) / (3 * 128);
      }
    }
    console.log(`raw sweep, ${label} (CPU | wall per image): ${sizes.map((b, k) => `${b}: ${cost[k]!.toFixed(3)} | ${wall[k]!.toFixed(3)} ms`).join(', ')}`);
    return sizes[cost.indexOf(Math.min(...cost))]!;
  };
  if (process.env.UNIT_THREADS2 === '1') {
    // The bench's raw baseline runs one session of 2 intra-op threads: its CPU per image, for comparison.
    const two = await UnitRunner.start({
      transport: 'process',
      placement: { kind: 'cpu', intraOpThreads: 2 },
      policy: 'inherit',
      resolve: repositoryUnitResolver(repo),
    });
    await sweep(two, '2 intra-op threads');
    await two.release();
  }
  const RAW_BATCH = num('UNIT_RAW_BATCH', 0) || (await sweep(unit, '1 intra-op thread (a unit)'));
  const rawInput = rawOf(RAW_BATCH);
  console.log(
    `unit-lines: ppocr_cls, ${LINES} lines/round (${(bytes.length / LINES / 1024).toFixed(1)} KiB each) in calls of ${CALL} (model batches of ≤ ${MAX_ROWS} rows), raw batches of ${RAW_BATCH}, ${ROUNDS} rounds, unit pid ${unit.pid}`,
  );
  let answers: UnitLineAnswer[] = [];
  await unit.run('ppocr_cls', rawInput); // warm-up: model open, arena
  await unit.runLines(task(bytes, ends, 0, Math.min(LINES, CALL)));

  const rows: string[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    // Raw and line calls alternate, so both see the same load on the shared box.
    const rc: Cost = { unitMs: 0, unitSysMs: 0, mainMs: 0, wallMs: 0 };
    const lc: Cost = { unitMs: 0, unitSysMs: 0, mainMs: 0, wallMs: 0 };
    answers = [];
    let images = 0;
    for (let from = 0; from < LINES; from += CALL) {
      await charge(unit, rc, async () => {
        await unit.run('ppocr_cls', rawInput);
      });
      images += RAW_BATCH;
      await charge(unit, lc, async () => {
        answers.push(...(await unit.runLines(task(bytes, ends, from, Math.min(LINES, from + CALL)))));
      });
    }
    const r = per(rc, images);
    const l = per(lc, LINES);
    const bad = answers.filter((a) => !('body' in a));
    if (answers.length !== LINES || bad.length) throw new Error(`round ${round}: ${answers.length} answers, ${bad.length} not 200: ${JSON.stringify(bad[0])}`);
    const row = `round ${round}: raw ${r.unitMs.toFixed(3)} ms CPU/image (sys ${r.unitSysMs.toFixed(3)}; main ${r.mainMs.toFixed(3)}, wall ${r.wallMs.toFixed(3)}) | lines ${l.unitMs.toFixed(3)} ms CPU/line in the unit (sys ${l.unitSysMs.toFixed(3)}), main thread ${l.mainMs.toFixed(3)} (wall ${l.wallMs.toFixed(3)}) | unit lines/raw ${(l.unitMs / r.unitMs).toFixed(3)}`;
    console.log(row);
    rows.push(
      JSON.stringify({
        round,
        raw_unit_ms: +r.unitMs.toFixed(3),
        lines_unit_ms: +l.unitMs.toFixed(3),
        raw_unit_sys_ms: +r.unitSysMs.toFixed(3),
        lines_unit_sys_ms: +l.unitSysMs.toFixed(3),
        lines_main_ms: +l.mainMs.toFixed(3),
        ratio: +(l.unitMs / r.unitMs).toFixed(3),
      }),
    );
  }
  // The unit's line work alone, in this process: answerLines with a model that answers at once.
  const opened = await unit.open('ppocr_cls');
  const fake: LinesModel = {
    version: opened.version,
    signature: opened.signature,
    maxBatchSize: opened.maxBatchSize,
    run: (inputs) =>
      Promise.resolve<InferTensor[]>([
        { name: 'softmax_0.tmp_0', datatype: 'FP32', shape: [inputs[0]!.shape[0]!, 2], data: new Float32Array(inputs[0]!.shape[0]! * 2).fill(0.5) },
      ]),
  };
  const tasks = Array.from({ length: Math.ceil(LINES / CALL) }, (_, k) => task(bytes, ends, k * CALL, Math.min(LINES, (k + 1) * CALL)));
  for (const t of tasks.slice(0, 4)) await answerLines(t, fake); // warm-up (JIT)
  for (let round = 1; round <= (process.env.UNIT_LINE_WORK === '0' ? 0 : ROUNDS); round++) {
    const s0 = selfCpuMs();
    for (const t of tasks) await answerLines(t, fake);
    const ms = (selfCpuMs() - s0) / LINES;
    console.log(`round ${round}: line work alone (answerLines, no model, in this process) ${ms.toFixed(3)} ms CPU/line`);
    rows.push(JSON.stringify({ round, line_work_ms: +ms.toFixed(3) }));
  }
  const first = answers[0]!;
  if ('body' in first) console.log(`line 1 answer: ${first.body.slice(0, 160)}…`);
  await unit.release();
  rows.forEach((r) => console.log(r));
  if (PROF_DIR) {
    const files = readdirSync(PROF_DIR).filter((f) => f.endsWith('.cpuprofile'));
    for (const f of files) {
      console.log(`profile ${join(PROF_DIR, f)} (self time, top 30):`);
      topFunctions(join(PROF_DIR, f), 30).forEach((l) => console.log(`  ${l}`));
    }
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
