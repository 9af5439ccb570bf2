import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { rawBaseline } from './batch-infer.bench-part';
import { closedLoop, clsBinaryTarget, type LoadResult } from './support/http-load';
import { cpuRate, cpuSample, type Stack } from './support/hybrid-stack';
import { LoadChild } from './support/load-child';
import { mib, PeakRss } from './support/proc-memory';

export interface FileBatchResult {
  requests: number;
  fileBytes: number;
  uploadS: number;
  uploadMBs: number;
  processingS: number;
  itemsS: number;
  rawItemsS: number;
  ratio: number;
  /** Items/s from the end of the online window to the end (online quiet), and its ratio to raw. */
  quietItemsS: number;
  quietRatio: number;
  failed: number;
  state: string;
  onlineRate: number;
  p99Before: number;
  p99During: number;
  p99Ratio: number;
  /** The batch was still running when the during-batch online window closed. */
  overlapped: boolean;
  onlineErrors: number;
  peakRssBytes: number;
  /** Every request's custom_id is in the output or error file exactly once (downloaded and counted). */
  exactlyOnce: boolean;
}

interface OpenAiView {
  id: string;
  status: string;
  request_counts: { total: number; completed: number; failed: number };
  output_file_id?: string | null;
  error_file_id?: string | null;
}

const ENDPOINT = '/v2/models/ppocr_cls/infer';
const STALL_MS = Number(process.env.BENCH_STALL_S ?? 120) * 1000;
const uuidOf = (id: string): string => {
  const h = id.replace(/^batch_/, '');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};

/**
 * Issue 15's file batch: `requests` OIP requests to ppocr_cls (JSON tensors) in one JSONL file,
 * uploaded by a child process (upload MB/s), run as an OpenAI-style batch on borrowed share;
 * processing items/s (first chunk → last commit) vs raw onnxruntime at its best batch size;
 * online ppocr_cls p99 at 40 % of its saturation (open loop, separate process) before any batch
 * and while this one runs; the batch app's peak RSS over the phase.
 */
export async function runFileBatchPhase(s: Stack, opts: { requests: number; onlineSeconds: number; repo: string; threads: number }): Promise<FileBatchResult> {
  const base = `http://127.0.0.1:${s.batchPort}`;
  const auth = { authorization: `Bearer ${s.key}` };
  const cls = clsBinaryTarget(s.gwPort, s.key);
  await closedLoop(cls, 8, 2); // warm-up
  const sat = await closedLoop(cls, 8, 5);
  const rate = 0.4 * sat.rps;
  console.log(`file batch: online ppocr_cls saturation ${sat.rps.toFixed(0)} req/s (${sat.errors} errors); open loop at 40 %: ${rate.toFixed(0)} req/s`);
  const load = LoadChild.start();
  try {
    const before = await load.openLoop(s.gwPort, rate, opts.onlineSeconds, s.key);
    console.log(`  online before any batch: p50 ${before.p50.toFixed(1)} ms, p99 ${before.p99.toFixed(1)} ms, ${before.ok} ok, ${before.errors} errors`);
    const rawBefore = await rawBaseline(opts.repo, opts.threads);

    const rss = new PeakRss(s.batch.proc.pid!);
    const t0 = performance.now();
    const up = await child(`${base}/v1/files?purpose=batch`, opts.requests, 'oip', s.key);
    const uploadS = (performance.now() - t0) / 1000;
    const file = JSON.parse(up) as { id: string; bytes: number };
    const uploadMBs = file.bytes / 1e6 / uploadS;
    console.log(
      `  upload ${opts.requests.toLocaleString('en')} requests, ${(file.bytes / 1e6).toFixed(0)} MB: ${uploadS.toFixed(2)} s, ${uploadMBs.toFixed(1)} MB/s`,
    );
    const created = await fetch(`${base}/v1/batches`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ input_file_id: file.id, endpoint: ENDPOINT, completion_window: '24h' }),
    });
    if (created.status !== 200) throw new Error(`file batch create: ${created.status} ${await created.text()}`);
    const { id } = (await created.json()) as OpenAiView;
    const view = async (): Promise<OpenAiView> => (await (await fetch(`${base}/v1/batches/${id}`, { headers: auth })).json()) as OpenAiView;
    const done = (v: OpenAiView): boolean => ['completed', 'failed', 'cancelled', 'expired'].includes(v.status);
    for (let v = await view(); v.request_counts.completed + v.request_counts.failed === 0 && !done(v); v = await view()) await sleep(100);
    const during: LoadResult = await load.openLoop(s.gwPort, rate, opts.onlineSeconds, s.key);
    let v = await view();
    const overlapped = !done(v);
    console.log(
      `  online while the batch runs: p50 ${during.p50.toFixed(1)} ms, p99 ${during.p99.toFixed(1)} ms, ${during.ok} ok, ${during.errors} errors${overlapped ? '' : ' (WARNING: the batch ended inside the window)'}`,
    );
    // The rate once online is quiet again: what the batch does with the whole share (the overall
    // figure includes the online window, where borrowed share is given back to online).
    const quietFrom = performance.now();
    const cpu0 = cpuSample(s);
    const quietDone0 = v.request_counts.completed + v.request_counts.failed;
    let seen = -1;
    let movedAt = performance.now();
    while (!done(v)) {
      await sleep(100);
      v = await view();
      const n = v.request_counts.completed + v.request_counts.failed;
      if (n !== seen) [seen, movedAt] = [n, performance.now()];
      // A stalled batch is an error with its state, not a bench that never ends.
      if (performance.now() - movedAt > STALL_MS) throw new Error(`file batch made no progress for ${STALL_MS / 1000} s: ${JSON.stringify(v)}`);
    }
    const quietS = (performance.now() - quietFrom) / 1000;
    // Cores busy per part while the batch ran alone: where its time goes (the unit processes are in "batch").
    const cpu = cpuRate(cpu0, cpuSample(s), quietS);
    const quietItemsS = overlapped ? (v.request_counts.completed + v.request_counts.failed - quietDone0) / quietS : NaN;
    const mem = rss.stop();
    const chord = (await (await fetch(`${base}/v1/batches/${uuidOf(id)}`, { headers: auth })).json()) as { startedAt: string; finishedAt: string };
    const processingS = (Date.parse(chord.finishedAt) - Date.parse(chord.startedAt)) / 1000;
    const exactlyOnce = await checkOutputs(base, auth, v, opts.requests);
    console.log(`  output + error files: every custom_id exactly once: ${exactlyOnce}`);
    const rawAfter = await rawBaseline(opts.repo, opts.threads);
    const raw = Math.max(rawBefore, rawAfter);
    const itemsS = opts.requests / processingS;
    const ratio = itemsS / raw;
    const quietRatio = quietItemsS / raw;
    const p99Ratio = during.p99 / before.p99;
    console.log(
      `  batch ${v.status}: ${v.request_counts.completed} completed, ${v.request_counts.failed} failed; processing ${processingS.toFixed(2)} s = ${itemsS.toFixed(0)} items/s`,
    );
    console.log(`  after the online window (no online load): ${quietItemsS.toFixed(0)} items/s over ${quietS.toFixed(1)} s; cores busy: ${cpu}`);
    console.log(
      `  raw onnxruntime best (before ${rawBefore.toFixed(0)}, after ${rawAfter.toFixed(0)}): ${raw.toFixed(0)} items/s; ratio ${ratio.toFixed(3)} overall, ${quietRatio.toFixed(3)} without online load (target ≥ 0.85)`,
    );
    console.log(`  online p99 during/before: ${p99Ratio.toFixed(2)}× (target ≤ 1.5); batch app peak RSS ${mib(mem.peakBytes)} (target ≤ 1 GiB)`);
    return {
      requests: opts.requests,
      fileBytes: file.bytes,
      uploadS,
      uploadMBs,
      processingS,
      itemsS,
      rawItemsS: raw,
      ratio,
      quietItemsS,
      quietRatio,
      failed: v.request_counts.failed,
      state: v.status,
      onlineRate: rate,
      p99Before: before.p99,
      p99During: during.p99,
      p99Ratio,
      overlapped,
      onlineErrors: before.errors + during.errors,
      peakRssBytes: mem.peakBytes,
      exactlyOnce,
    };
  } finally {
    load.stop();
  }
}

/** Downloads the output and error files: each of r0…r(n−1) appears once, in one of them, and nothing else. */
async function checkOutputs(base: string, auth: Record<string, string>, v: OpenAiView, n: number): Promise<boolean> {
  const seen = new Uint8Array(n);
  let bad = 0;
  for (const file of [v.output_file_id, v.error_file_id]) {
    if (!file) continue;
    const res = await fetch(`${base}/v1/files/${file}/content`, { headers: auth });
    if (!res.ok || !res.body) throw new Error(`file ${file}: ${res.status}`);
    let rest = '';
    const take = (line: string): void => {
      if (line === '') return;
      const id = (JSON.parse(line) as { custom_id?: string }).custom_id ?? '';
      const i = /^r\d+$/.test(id) ? Number(id.slice(1)) : -1;
      if (i < 0 || i >= n || seen[i]) bad++;
      else seen[i] = 1;
    };
    const dec = new TextDecoder();
    for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) {
      const lines = (rest + dec.decode(c, { stream: true })).split('\n');
      rest = lines.pop()!;
      lines.forEach(take);
    }
    take(rest + dec.decode());
  }
  return bad === 0 && seen.every((x) => x === 1);
}

/** The upload child (bench/support/ndjson-upload.ts); resolves with what it printed (the response). */
async function child(url: string, count: number, kind: string, key: string): Promise<string> {
  const c = spawn(process.execPath, [resolve(__dirname, 'support/ndjson-upload.js'), url, String(count), kind], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, BENCH_KEY: key },
  });
  let out = '';
  c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => c.on('exit', r));
  if (code !== 0) throw new Error(`upload child failed (exit ${code})`);
  return out;
}
