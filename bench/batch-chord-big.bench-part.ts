import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sumOfSquares } from './batch-bench.support';
import { mib, PeakRss } from './support/proc-memory';

export interface BigChordResult {
  items: number;
  uploadS: number;
  e2eS: number;
  processingS: number;
  exact: boolean;
  peakRssBytes: number;
  state: string;
}

interface View {
  id: string;
  state: string;
  result: { count: number; sum: string } | null;
  error: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

/**
 * The seed's night-time case: score/summarize over `items` integers uploaded as one NDJSON stream
 * by a child process (generation must not share the app's CPU budget with bookkeeping), through
 * the chord API into the blob store, chunks as byte ranges. Wall time is upload start → succeeded.
 */
export async function runBigChord(opts: { batchPort: number; batchPid: number; key: string; items: number; chunkSize: number }): Promise<BigChordResult> {
  const base = `http://127.0.0.1:${opts.batchPort}`;
  const auth = { authorization: `Bearer ${opts.key}` };
  const rss = new PeakRss(opts.batchPid);
  const url = `${base}/v1/batches?task=score&reducer=summarize&chunkSize=${opts.chunkSize}`;
  const t0 = performance.now();
  const child = spawn(process.execPath, [resolve(__dirname, 'support/ndjson-upload.js'), url, String(opts.items), 'ints'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, BENCH_KEY: opts.key },
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  if (code !== 0) throw new Error(`chord upload failed (exit ${code})`);
  const uploadS = (performance.now() - t0) / 1000;
  const { id } = JSON.parse(out) as { id: string };
  let v: View;
  for (;;) {
    v = (await (await fetch(`${base}/v1/batches/${id}`, { headers: auth })).json()) as View;
    if (['succeeded', 'failed', 'cancelled'].includes(v.state)) break;
    await sleep(100);
  }
  const e2eS = (performance.now() - t0) / 1000;
  const mem = rss.stop();
  const exact = v.state === 'succeeded' && v.result?.count === opts.items && v.result.sum === sumOfSquares(opts.items);
  const processingS = (Date.parse(v.finishedAt ?? '') - Date.parse(v.startedAt ?? '')) / 1000;
  console.log(
    `chord score/summarize over ${opts.items.toLocaleString('en')} NDJSON items (chunk ${opts.chunkSize.toLocaleString('en')}, blob-store byte ranges)`,
  );
  console.log(`  upload + validate + store: ${uploadS.toFixed(2)} s (${Math.round(opts.items / uploadS).toLocaleString('en')} items/s)`);
  console.log(
    `  end to end: ${e2eS.toFixed(2)} s (target ≤ 60), ${Math.round(opts.items / e2eS).toLocaleString('en')} items/s; first chunk → fan-in ${processingS.toFixed(2)} s`,
  );
  console.log(
    `  ${v.state}, sum ${v.result?.sum ?? v.error} ${exact ? 'exact' : 'WRONG'}; batch app peak RSS ${mib(mem.peakBytes)} (VmHWM ${mem.reset ? 'reset for the phase' : 'lifetime, not resettable'}: ${mib(mem.hwmBytes)}, sampled ${mib(mem.sampledBytes)}; target ≤ 1 GiB)`,
  );
  if (!exact) console.log(`  ERROR: chord not exact (${v.state}: ${v.error})`);
  return { items: opts.items, uploadS, e2eS, processingS, exact, peakRssBytes: mem.peakBytes, state: v.state };
}
