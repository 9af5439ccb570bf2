import { InferenceSession, Tensor } from 'onnxruntime-node';
import { resolve } from 'node:path';

/**
 * `npm run bench:cold`: what the first run after an idle spell costs on this machine, without
 * Tandem (docs/benchmarks.md, "Cold after idle"). ppocr_cls with the replica's session options
 * (2 intra-op threads, batch 1): three runs after 0 / 0.1 / 1 / 3 / 8 s idle; a plain JS loop over
 * a 4 MB Float32Array the same way (memory, not onnxruntime); then the first real run ~2 s into
 * a keep-warm every P ms (0 = none, 200, 100, 50, 25: what INFERENCE_KEEP_WARM_MS buys).
 */
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const say = (s: string): void => void process.stdout.write(`${s}\n`);
const IDLES = [0, 100, 1_000, 3_000, 8_000];

async function main(): Promise<void> {
  const s = await InferenceSession.create(resolve('models/ppocr_cls/1/model.onnx'), {
    graphOptimizationLevel: 'all',
    enableCpuMemArena: true,
    intraOpNumThreads: 2,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  });
  const feeds = { x: new Tensor('float32', new Float32Array(3 * 48 * 192).fill(0.3), [1, 3, 48, 192]) };
  const timed = async (f: () => Promise<unknown> | unknown): Promise<number> => {
    const t0 = performance.now();
    await f();
    return performance.now() - t0;
  };
  for (let i = 0; i < 50; i++) await s.run(feeds);
  const out: Record<string, number> = {};
  for (const idle of IDLES) {
    await sleep(idle);
    const t = [await timed(() => s.run(feeds)), await timed(() => s.run(feeds)), await timed(() => s.run(feeds))];
    out[`ort_after_${idle}ms`] = Number(t[0]!.toFixed(1));
    say(`onnxruntime, ${idle} ms idle: runs ${t.map((x) => x.toFixed(1)).join(' / ')} ms`);
  }
  const a = new Float32Array(1 << 20).fill(1.1);
  const loop = (): number => {
    let x = 0;
    for (let k = 0; k < 4; k++) for (let i = 0; i < a.length; i++) x += a[i]! * 1.0001;
    return x;
  };
  for (let i = 0; i < 20; i++) loop();
  for (const idle of IDLES) {
    await sleep(idle);
    const t = [await timed(loop), await timed(loop)];
    out[`js4mb_after_${idle}ms`] = Number(t[0]!.toFixed(1));
    say(`JS loop over 4 MB, ${idle} ms idle: ${t.map((x) => x.toFixed(1)).join(' / ')} ms`);
  }
  for (const period of [0, 200, 100, 50, 25]) {
    let busy = false;
    let runs = 0;
    let spent = 0;
    const timer = period
      ? setInterval(() => {
          if (busy) return;
          busy = true;
          const t0 = performance.now();
          void s.run(feeds).then(() => {
            spent += performance.now() - t0;
            runs++;
            busy = false;
          });
        }, period)
      : undefined;
    const firsts: number[] = [];
    for (let k = 0; k < 4; k++) {
      await sleep(2_000 + Math.random() * period);
      while (busy) await sleep(1);
      firsts.push(await timed(() => s.run(feeds)));
    }
    clearInterval(timer);
    out[`first_run_keep_warm_${period}ms`] = Number(Math.max(...firsts).toFixed(1));
    say(
      `keep-warm every ${period || '—'} ms: first real run after ~2 s ${firsts.map((x) => x.toFixed(1)).join(' / ')} ms` +
        (runs ? `; a keep-warm run ${(spent / runs).toFixed(2)} ms` : ''),
    );
  }
  say(JSON.stringify({ bench: 'cold', ...out }));
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:cold failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
