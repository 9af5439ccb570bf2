import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadModelRunner } from '@tandem/inference';

export interface InferBenchResult {
  inferItemsS: number | null;
  rawItemsS: number | null;
  ratio: number | null;
}

const MODEL = 'ppocr_cls';
const PER_ITEM = 3 * 48 * 192;
const VARIANTS = 64;

/** Raw onnxruntime on pre-built tensors: best items/s over a sweep of batch sizes, same thread count. */
export async function rawBaseline(repo: string, threads: number): Promise<number> {
  const runner = await loadModelRunner(repo, MODEL, { placement: { kind: 'cpu', intraOpThreads: threads } });
  try {
    let best = 0;
    for (const bs of [1, 8, 16, 32, 64]) {
      const data = new Float32Array(bs * PER_ITEM);
      for (let i = 0; i < data.length; i++) data[i] = ((i * 2654435761) % 255) / 127.5 - 1;
      const input = [{ name: 'x', datatype: 'FP32' as const, shape: [bs, 3, 48, 192], data }];
      await runner.run(input); // warm-up
      const items = 2_048;
      const t0 = performance.now();
      for (let done = 0; done < items; done += bs) await runner.run(input);
      const rate = items / ((performance.now() - t0) / 1000);
      console.log(`  raw onnxruntime, batch ${bs}: ${rate.toFixed(0)} items/s`);
      best = Math.max(best, rate);
    }
    return best;
  } finally {
    await runner.release();
  }
}

interface Status {
  state: string;
  error: string | null;
  counts: { itemsDone: number };
  startedAt: string | null;
  finishedAt: string | null;
}

/**
 * 20,000 generated 8-bit inputs uploaded as streamed NDJSON (`{"u8": base64}` per line, 27,648
 * pixels each: ~740 MB), run by the batch worker through @tandem/inference in batches of 64.
 */
export async function runInferBench(base: string, opts: { repo: string; threads: number; items: number; chunkSize: number }): Promise<InferBenchResult> {
  console.log(
    `infer (${MODEL}, ${opts.items.toLocaleString('en')} generated inputs, ${opts.threads} cores on both sides: raw is one session with that many intra-op threads, the worker that many single-thread ledger units)`,
  );
  const raw = await rawBaseline(opts.repo, opts.threads);
  const variants = Array.from({ length: VARIANTS }, () => JSON.stringify({ u8: randomBytes(PER_ITEM).toString('base64') }) + '\n');
  async function* lines(): AsyncGenerator<string> {
    for (let i = 0; i < opts.items; i++) yield variants[i % VARIANTS];
  }
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/batches?task=infer&model=${MODEL}&reducer=count&chunkSize=${opts.chunkSize}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body: Readable.toWeb(Readable.from(lines())) as ReadableStream,
    duplex: 'half',
  } as RequestInit);
  if (res.status !== 201) throw new Error(`infer submit: ${res.status} ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  const submitted = performance.now();
  let st: Status;
  for (;;) {
    st = (await (await fetch(`${base}/v1/batches/${id}`)).json()) as Status;
    if (['succeeded', 'failed', 'cancelled'].includes(st.state)) break;
    await sleep(50);
  }
  const end = performance.now();
  if (st.state !== 'succeeded') throw new Error(`infer batch ${st.state}: ${st.error}`);
  // The machine is shared: measure raw again afterwards and compare against the better of the two.
  const rawAfter = await rawBaseline(opts.repo, opts.threads);
  const rawBest = Math.max(raw, rawAfter);
  const processingS = (Date.parse(st.finishedAt ?? '') - Date.parse(st.startedAt ?? '')) / 1000;
  const infer = opts.items / processingS;
  const e2e = opts.items / ((end - t0) / 1000);
  console.log(`  upload+validate+store: ${((submitted - t0) / 1000).toFixed(2)} s; processing (first chunk start → fan-in): ${processingS.toFixed(2)} s`);
  console.log(`  batch infer: ${infer.toFixed(0)} items/s processing, ${e2e.toFixed(0)} items/s end-to-end incl. upload`);
  console.log(`  best raw (before ${raw.toFixed(0)}, after ${rawAfter.toFixed(0)}): ${rawBest.toFixed(0)} items/s`);
  console.log(`  ratio processing ${(infer / rawBest).toFixed(3)} (target ≥ 0.85), end-to-end ${(e2e / rawBest).toFixed(3)}`);
  return { inferItemsS: infer, rawItemsS: rawBest, ratio: infer / rawBest };
}
