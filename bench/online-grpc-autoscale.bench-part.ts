import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { credentials, loadPackageDefinition, Metadata, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { closedLoopOf } from './support/http-load';

/** Parts of `npm run bench:online` for issue 4: gRPC raw-contents throughput and an autoscaling trace. */

const ITEM = 3 * 48 * 192;
const q = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))]! : NaN;
};

type InferClient = { ModelInfer: (req: object, md: Metadata, cb: (e: ServiceError | null, r: unknown) => void) => void; close(): void };

export function grpcClient(addr: string, protoDir: string): InferClient {
  const defs = loadSync(resolve(protoDir, 'grpc_service.proto'), { keepCase: true, longs: String, defaults: true, oneofs: true });
  const pkg = loadPackageDefinition(defs) as unknown as {
    inference: { GRPCInferenceService: new (a: string, c: ReturnType<typeof credentials.createInsecure>, o: object) => InferClient };
  };
  return new pkg.inference.GRPCInferenceService(addr, credentials.createInsecure(), {
    'grpc.max_send_message_length': 64 << 20,
    'grpc.max_receive_message_length': 64 << 20,
  });
}

/** Closed loop of ModelInfer on ppocr_cls with raw_input_contents, `batch` items per request. */
export async function grpcClosedLoop(
  addr: string,
  protoDir: string,
  concurrency: number,
  seconds: number,
  batch = 1,
  key?: string,
): Promise<{ itemsS: number; p50: number; p99: number; errors: number }> {
  // Several channels: one HTTP/2 connection would serialize the large messages.
  const clients = Array.from({ length: Math.min(8, concurrency) }, () => grpcClient(addr, protoDir));
  const x = Buffer.from(new Float32Array(batch * ITEM).fill(0.3).buffer);
  const req = { model_name: 'ppocr_cls', inputs: [{ name: 'x', datatype: 'FP32', shape: [batch, 3, 48, 192] }], raw_input_contents: [x] };
  const meta = new Metadata();
  if (key) meta.set('authorization', `Bearer ${key}`);
  const r = await closedLoopOf(
    concurrency,
    seconds,
    (i) => new Promise<boolean>((done) => clients[i % clients.length]!.ModelInfer(req, meta, (e) => done(!e))),
  );
  for (const c of clients) c.close();
  return { itemsS: r.rps * batch, p50: r.p50, p99: r.p99, errors: r.errors };
}

export interface TraceStep {
  step: string;
  offered_req_s: number;
  achieved_req_s: number;
  replicas_start: number;
  replicas_end: number;
  replicas_max: number;
  p99_ms: number;
  errors: number;
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((ok) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => ok(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function replicasOf(gw: string): Promise<number> {
  const text = await (await fetch(`${gw}/metrics`)).text();
  const m = /tandem_inference_replicas\{model="cls_auto",version="1"\} (\d+)/.exec(text);
  return m ? Number(m[1]) : NaN;
}

/** Open loop with fetch: requests start on schedule; latency from the scheduled time. */
async function openLoop(
  gw: string,
  body: Buffer,
  headerLen: number,
  rate: number,
  seconds: number,
  key: string,
): Promise<{ lat: number[]; ok: number; errors: number }> {
  const lat: number[] = [];
  let ok = 0;
  let errors = 0;
  const total = Math.floor(rate * seconds);
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + (i / rate) * 1000;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push(
      fetch(`${gw}/v2/models/cls_auto/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLen), authorization: `Bearer ${key}` },
        body,
      }).then(
        async (r) => {
          await r.arrayBuffer();
          if (r.status === 200) {
            ok++;
            lat.push(performance.now() - due);
          } else errors++;
        },
        () => void errors++,
      ),
    );
  }
  await Promise.all(inflight);
  return { lat, ok, errors };
}

/**
 * Autoscaling trace: a gateway of its own serving `cls_auto` (ppocr_cls, 1 thread per replica,
 * 1–2 replicas, autoscaled), offered 10% → 80% → 10% of its measured saturation (at 2 replicas)
 * in open loop, replica count sampled every 500 ms.
 */
export async function autoscaleTrace(opts: {
  distRoot: string;
  env: NodeJS.ProcessEnv;
  stepSeconds: number;
  say: (s: string) => void;
  key: string;
}): Promise<{ saturation: number; steps: TraceStep[]; timeline: { t: number; replicas: number }[] }> {
  const repo = mkdtempSync(join(tmpdir(), 'tandem-autoscale-'));
  const src = realpathSync(resolve(opts.distRoot, '../models/ppocr_cls/1/model.onnx'));
  mkdirSync(join(repo, 'cls_auto', '1'), { recursive: true });
  mkdirSync(join(repo, 'cls_fixed', '1'), { recursive: true });
  copyFileSync(src, join(repo, 'cls_auto', '1', 'model.onnx'));
  copyFileSync(src, join(repo, 'cls_fixed', '1', 'model.onnx'));
  const input = { name: 'x', datatype: 'FP32', shape: [-1, 3, 48, 192] };
  writeFileSync(
    join(repo, 'cls_auto', 'config.json'),
    JSON.stringify({
      max_batch_size: 16,
      replicas: 1,
      device: { threads_per_replica: 1 },
      autoscaling: { min_replicas: 1, max_replicas: 2, target_ongoing_requests: 2, upscale_delay_s: 1, downscale_delay_s: 4, window_s: 2 },
      inputs: [input],
    }),
  );
  const port = await freePort();
  const gwUrl = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(process.execPath, [resolve(opts.distRoot, 'apps/gateway/src/main.js')], {
    env: {
      ...opts.env,
      GATEWAY_PORT: String(port),
      GATEWAY_GRPC_PORT: String(await freePort()),
      MODEL_REPOSITORY: repo,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      TANDEM_ADMIN_KEY: opts.key,
      AUTOSCALER_TICK_MS: '250',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    for (
      let i = 0;
      (await fetch(`${gwUrl}/v2/health/ready`).then(
        (r) => r.status,
        () => 0,
      )) !== 200;
      i++
    ) {
      if (i > 600) throw new Error('autoscale gateway not ready');
      await new Promise((r) => setTimeout(r, 100));
    }
    const x = Buffer.from(new Float32Array(ITEM).fill(0.3).buffer);
    const header = Buffer.from(
      JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], parameters: { binary_data_size: x.length } }] }),
    );
    const body = Buffer.concat([header, x]);
    // Saturation of the autoscaled model: closed loop, long enough for it to reach 2 replicas.
    let done = 0;
    const satEnd = performance.now() + 8_000;
    let measuredFrom = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (performance.now() < satEnd) {
          const r = await fetch(`${gwUrl}/v2/models/cls_auto/infer`, {
            method: 'POST',
            headers: {
              'content-type': 'application/octet-stream',
              'inference-header-content-length': String(header.length),
              authorization: `Bearer ${opts.key}`,
            },
            body,
          });
          await r.arrayBuffer();
          if (performance.now() > satEnd - 5_000) {
            measuredFrom ||= performance.now();
            done++;
          }
        }
      }),
    );
    const saturation = done / 5;
    opts.say(`autoscale: cls_auto saturation ${saturation.toFixed(0)} req/s at ${await replicasOf(gwUrl)} replicas; letting it settle back to 1`);
    for (let i = 0; i < 40 && (await replicasOf(gwUrl)) > 1; i++) await new Promise((r) => setTimeout(r, 250));

    const timeline: { t: number; replicas: number }[] = [];
    const t0 = performance.now();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        timeline.push({ t: Number(((performance.now() - t0) / 1000).toFixed(1)), replicas: await replicasOf(gwUrl) });
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    const steps: TraceStep[] = [];
    for (const [name, frac] of [
      ['10%', 0.1],
      ['80%', 0.8],
      ['10%', 0.1],
    ] as const) {
      const rate = Math.max(1, saturation * frac);
      const from = timeline.length;
      const r0 = await replicasOf(gwUrl);
      const res = await openLoop(gwUrl, body, header.length, rate, opts.stepSeconds, opts.key);
      const seen = timeline.slice(from).map((s) => s.replicas);
      const step: TraceStep = {
        step: name,
        offered_req_s: Number(rate.toFixed(1)),
        achieved_req_s: Number((res.ok / opts.stepSeconds).toFixed(1)),
        replicas_start: r0,
        replicas_end: await replicasOf(gwUrl),
        replicas_max: Math.max(r0, ...seen),
        p99_ms: Number(q(res.lat, 0.99).toFixed(1)),
        errors: res.errors,
      };
      steps.push(step);
      opts.say(
        `autoscale step ${name} of saturation (${step.offered_req_s} req/s): replicas ${step.replicas_start} → ${step.replicas_end} (max ${step.replicas_max}), p99 ${step.p99_ms} ms, ${step.errors} errors`,
      );
    }
    sampling = false;
    await sampler;
    return { saturation, steps, timeline };
  } finally {
    child.kill('SIGTERM');
    rmSync(repo, { recursive: true, force: true });
  }
}
