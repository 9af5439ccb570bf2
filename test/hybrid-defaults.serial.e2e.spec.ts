import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { autogroupOf } from '../apps/batch/src/worker/cpu-priority';
import { childrenOf, startStack, stealMs, type Stack } from '../bench/support/hybrid-stack';
import { procStat } from '../bench/support/proc-stat';
import { deleteQueueKeys, waitUntil, type BatchBody } from './support/batch-harness';
import { createTestDatabase, testQueuePrefix, type TestDatabase } from './support/test-env';

const run = promisify(execFile);

interface OpenLoop {
  p50: number;
  p99: number;
  ok: number;
  failed: number;
}

/** Children of `pid`: scheduler state (R running, S sleeping, T stopped) and command line. */
function childStates(pid: number): string[] {
  return childrenOf(pid).map((c) => {
    try {
      return `${procStat(c)?.[0] ?? 'gone'} ${readFileSync(`/proc/${c}/cmdline`, 'utf8').slice(0, 40)}`;
    } catch {
      return 'gone';
    }
  });
}

/**
 * The product's promise at shipped defaults, as a coarse guard (the figures come from
 * `npm run bench:hybrid`): both apps compiled and configured as `npm start` runs them
 * (authentication on, the bundled ppocr_cls, default partition and claim policy), online
 * open-loop load from a child process, then the same load while an `infer` batch over the same
 * model runs. Runs on its own (vitest.serial.mts): a latency ratio means nothing while other
 * test files load the same two cores.
 */
describe('co-location at shipped defaults: a running batch does not hurt online latency', () => {
  let db: TestDatabase;
  let stack: Stack;
  const prefix = testQueuePrefix();
  /** Open loop from a child process; `steal`: the host's steal time meanwhile (ms/s), which no code here controls. */
  const online = async (rate: number, seconds: number): Promise<OpenLoop & { steal: number }> => {
    const s0 = stealMs();
    const { stdout } = await run(process.execPath, [
      resolve('test/support/open-loop.mjs'),
      `http://127.0.0.1:${stack.gwPort}`,
      stack.key,
      String(rate),
      String(seconds),
    ]);
    return { ...(JSON.parse(stdout) as OpenLoop), steal: (stealMs() - s0) / seconds };
  };
  const admin = async <T>(path: string): Promise<T> =>
    (await (await fetch(`http://127.0.0.1:${stack.gwPort}/admin/api${path}`, { headers: { authorization: `Bearer ${stack.key}` } })).json()) as T;
  const cpuUse = async (): Promise<{ online: number; batch: number }> => {
    const v = await admin<{ devices: { kind: string; used: { online: number; batch: number } }[] }>('/hybrid');
    return v.devices.find((d) => d.kind === 'cpu')!.used;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    stack = await startStack(db.url, `defaults-${randomBytes(3).toString('hex')}`, { QUEUE_PREFIX: prefix });
  });
  afterAll(async () => {
    await stack?.stop();
    await deleteQueueKeys(prefix);
    await db?.drop();
  });

  it(
    'keeps online p99 within 3× of its no-batch p99; the batch is off the cores while online is busy and finishes exactly afterwards',
    { timeout: 180_000 },
    async () => {
      await online(80, 2); // warm-up
      // Like for like: the phase with the batch starts after seconds without online traffic (the
      // upload, the batch taking the cores), so the reference starts after such a pause too. Online
      // traffic after a pause pays a cold start of its own (docs/benchmarks.md, bench:hybrid's
      // first-2-s figures); this guard is about what the batch adds to it.
      await new Promise((r) => setTimeout(r, 8_000));
      const base = await online(80, 8);
      expect(base.failed).toBe(0);

      // An infer batch over the same model, streamed as NDJSON (8-bit images), with the API key.
      const images = Array.from({ length: 16 }, () => `${JSON.stringify({ u8: randomBytes(3 * 48 * 192).toString('base64') })}\n`);
      const n = 3_000;
      const res = await fetch(`http://127.0.0.1:${stack.batchPort}/v1/batches?task=infer&model=ppocr_cls&reducer=count&chunkSize=100`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson', authorization: `Bearer ${stack.key}` },
        body: Readable.toWeb(
          Readable.from(
            (function* () {
              for (let i = 0; i < n; i++) yield images[i % 16]!;
            })(),
          ),
        ) as ReadableStream,
        duplex: 'half',
      } as RequestInit);
      expect(res.status).toBe(201);
      const { id } = (await res.json()) as { id: string };
      // Online idle: by default the batch borrows the whole device (partition online 1.0, batch 0).
      await waitUntil(async () => (await cpuUse()).batch >= 0.99, 'the batch borrowing every core', 30_000);

      const mixedRun = online(80, 8);
      // Online busy: the gateway holds the whole online partition, the batch holds nothing and its
      // unit processes are stopped or idle, never running.
      await waitUntil(async () => (await cpuUse()).online === 1, 'the online claim', 3_000);
      expect(await cpuUse()).toMatchObject({ online: 1, batch: 0 });
      await new Promise((r) => setTimeout(r, 200));
      const states = childStates(stack.batch.proc.pid!);
      expect(states.length).toBeGreaterThan(0);
      expect(states.filter((s) => s.startsWith('R'))).toEqual([]);
      expect(states.some((s) => s.startsWith('T'))).toBe(true);
      // Each app leads its own session, as npm start runs them; the kernel weighs sessions before
      // threads, so the batch's (its units included) is at the lowest weight, the gateway's is not.
      const batchGroup = autogroupOf(stack.batch.proc.pid!);
      expect(batchGroup.nice).toBe(19);
      expect(autogroupOf(stack.gateway.proc.pid!)).toMatchObject({ nice: 0 });
      expect(autogroupOf(stack.gateway.proc.pid!).group).not.toBe(batchGroup.group);
      for (const unit of childrenOf(stack.batch.proc.pid!)) expect(autogroupOf(unit)).toEqual(batchGroup);
      const cost = await admin<{ batchCost: { batchPresent: boolean }[] }>('/hybrid/cost');
      expect(cost.batchCost[0]).toMatchObject({ batchPresent: true });
      const mixed = await mixedRun;
      expect(mixed.failed).toBe(0);
      // 3× of the no-batch p99, with a 20 ms floor: with no batch at all this VM's p99 moves 7–50 ms
      // between phases (host steal of up to 500 ms/s; docs/benchmarks.md), so a coarse guard
      // against a collapse (the issue's 138×) cannot be tighter than that here.
      const why = `p99 ${mixed.p99.toFixed(1)} ms with the batch vs ${base.p99.toFixed(1)} ms without; host steal ${mixed.steal.toFixed(0)} vs ${base.steal.toFixed(0)} ms/s`;
      expect(mixed.p99, why).toBeLessThanOrEqual(3 * Math.max(base.p99, 20));

      // Online idle again: the batch takes the cores back and finishes, every item counted once.
      const get = async (): Promise<BatchBody> =>
        (await (
          await fetch(`http://127.0.0.1:${stack.batchPort}/v1/batches/${id}`, { headers: { authorization: `Bearer ${stack.key}` } })
        ).json()) as BatchBody;
      await waitUntil(async () => (await get()).state === 'succeeded', 'the batch to finish', 90_000);
      const done = await get();
      expect(done.result).toBe(n);
      expect(done.counts).toMatchObject({ items: n, itemsDone: n, itemsFailed: 0 });
    },
  );
});
