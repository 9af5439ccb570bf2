import { resolve } from 'node:path';
import { credentials, loadPackageDefinition, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { loadSync, type MethodDefinition } from '@grpc/proto-loader';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { GrpcServerService } from '../apps/gateway/src/grpc/grpc-server.service';
import { CLS_MODEL_FILE, tempModelRepo, type TempRepo } from './support/model-repo';
import { createTestDatabase, type TestDatabase } from './support/test-env';
import { gatewayEnv } from './support/gateway-harness';
import { answerWhileUploading, grpcFrame } from './support/grpc-raw';

// The client is generated at test time from the project's .proto, as any OIP client would be.
const PROTO = resolve(process.cwd(), 'apps/gateway/src/grpc/proto');
const defs = loadSync([resolve(PROTO, 'grpc_service.proto'), resolve(PROTO, 'health.proto')], {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const modelInferDef = (defs['inference.GRPCInferenceService'] as Record<string, MethodDefinition<object, object>>).ModelInfer!;
type Callback = (err: ServiceError | null, res: Record<string, unknown>) => void;
type Client = Record<string, (req: object, md: Metadata, opts: { deadline?: number }, cb: Callback) => void> & { close(): void };
const pkg = loadPackageDefinition(defs) as unknown as {
  inference: { GRPCInferenceService: new (addr: string, creds: ReturnType<typeof credentials.createInsecure>) => Client };
  grpc: { health: { v1: { Health: new (addr: string, creds: ReturnType<typeof credentials.createInsecure>) => Client } } };
};

function call<T = Record<string, unknown>>(c: Client, method: string, req: object, deadlineMs?: number): Promise<T> {
  return new Promise((ok, fail) =>
    c[method]!(req, new Metadata(), deadlineMs ? { deadline: Date.now() + deadlineMs } : {}, (err, res) => (err ? fail(err) : ok(res as T))),
  );
}
async function codeOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return status.OK;
  } catch (e) {
    return (e as ServiceError).code;
  }
}

const CLS_ITEM = 3 * 48 * 192;
function clsInput(batch: number, seed: number): Float32Array {
  const x = new Float32Array(batch * CLS_ITEM);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37 + seed) * 0.8;
  return x;
}

describe('gRPC inference.GRPCInferenceService over a real socket', () => {
  let db: TestDatabase;
  let repo: TempRepo;
  let gw: RunningGateway;
  let client: Client;
  let health: Client;
  let addr: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    repo = tempModelRepo({
      scorer: { from: 'scorer', config: { max_batch_size: 1024, inputs: [{ name: 'x', shape: [-1, 1] }] } },
      ppocr_cls: { from: 'ppocr_cls', config: { max_batch_size: 64, inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, 48, 192] }] } },
      cls_slow_batch: {
        from: 'ppocr_cls',
        config: { max_batch_size: 64, dynamic_batching: { max_queue_delay_us: 2_000_000 }, inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, 48, 192] }] },
      },
      // A lone request waits 1.5 s for its batch to fill, and it alone fills the queue.
      cls_one_slot: {
        from: 'ppocr_cls',
        config: {
          max_batch_size: 64,
          dynamic_batching: { max_queue_delay_us: 1_500_000, max_queue_size: 1 },
          inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, 48, 192] }],
        },
      },
      // One replica, one queued request at most: the third concurrent request must be refused.
      cls_tiny_queue: {
        from: 'ppocr_cls',
        config: { max_batch_size: 1, dynamic_batching: { max_queue_size: 1 }, inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, 48, 192] }] },
      },
    });
    gw = await startGateway(
      loadGatewayConfig({
        ...gatewayEnv(db.url),
        MODEL_REPOSITORY: repo.dir,
        GATEWAY_GRPC_MAX_MESSAGE_MB: '4',
      }),
    );
    addr = `127.0.0.1:${gw.app.get(GrpcServerService).port}`;
    client = new pkg.inference.GRPCInferenceService(addr, credentials.createInsecure());
    health = new pkg.grpc.health.v1.Health(addr, credentials.createInsecure());
  });

  afterAll(async () => {
    client?.close();
    health?.close();
    await gw?.app.close();
    await db?.drop();
    repo?.remove();
  });

  it('ServerLive, ServerReady, ServerMetadata and the standard health service', async () => {
    expect(await call(client, 'ServerLive', {})).toEqual({ live: true });
    expect(await call(client, 'ServerReady', {})).toEqual({ ready: true });
    const meta = await call<{ name: string; extensions: string[] }>(client, 'ServerMetadata', {});
    expect(meta.name).toBe('tandem');
    expect(meta.extensions).toContain('binary_tensor_data');
    expect(await call(health, 'Check', { service: '' })).toEqual({ status: 'SERVING' });
    expect(await call(health, 'Check', { service: 'inference.GRPCInferenceService' })).toEqual({ status: 'SERVING' });
    expect(await codeOf(call(health, 'Check', { service: 'nope' }))).toBe(status.NOT_FOUND);
  });

  it('ModelReady and ModelMetadata, NOT_FOUND for unknown models', async () => {
    expect(await call(client, 'ModelReady', { name: 'scorer', version: '' })).toEqual({ ready: true });
    expect(await call(client, 'ModelReady', { name: 'ppocr_cls', version: '1' })).toEqual({ ready: true });
    expect(await codeOf(call(client, 'ModelReady', { name: 'nope', version: '' }))).toBe(status.NOT_FOUND);
    expect(await codeOf(call(client, 'ModelMetadata', { name: 'scorer', version: '7' }))).toBe(status.NOT_FOUND);
    const m = await call<{ name: string; versions: string[]; platform: string; inputs: unknown[]; outputs: unknown[] }>(client, 'ModelMetadata', {
      name: 'ppocr_cls',
      version: '',
    });
    expect(m.name).toBe('ppocr_cls');
    expect(m.versions).toEqual(['1']);
    expect(m.platform).toBe('onnxruntime_onnx');
    expect(m.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: ['-1', '3', '48', '192'] }]);
    expect((m.outputs as { datatype: string }[])[0]!.datatype).toBe('FP32');
  });

  it('ModelInfer with typed contents: scorer returns tanh(x), id echoed', async () => {
    const xs = [0.5, -1, 0, 2];
    const res = await call<{
      id: string;
      model_name: string;
      outputs: { name: string; shape: string[]; contents: { fp32_contents: number[] } }[];
      raw_output_contents: Buffer[];
    }>(client, 'ModelInfer', { model_name: 'scorer', id: 'req-42', inputs: [{ name: 'x', datatype: 'FP32', shape: [4, 1], contents: { fp32_contents: xs } }] });
    expect(res.id).toBe('req-42');
    expect(res.model_name).toBe('scorer');
    expect(res.raw_output_contents).toEqual([]);
    expect(res.outputs[0]!.name).toBe('score');
    expect(res.outputs[0]!.shape).toEqual(['4', '1']);
    res.outputs[0]!.contents.fp32_contents.forEach((v, i) => expect(v).toBeCloseTo(Math.tanh(xs[i]!), 5));
  });

  it('ModelInfer with raw contents: ppocr_cls equals a direct onnxruntime run', async () => {
    const x = clsInput(3, 1);
    const res = await call<{ outputs: { name: string; datatype: string; shape: string[] }[]; raw_output_contents: Buffer[] }>(client, 'ModelInfer', {
      model_name: 'ppocr_cls',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [3, 3, 48, 192] }],
      raw_input_contents: [Buffer.from(x.buffer)],
    });
    expect(res.raw_output_contents).toHaveLength(1);
    const raw = res.raw_output_contents[0]!;
    const got = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));

    const session = await ort.InferenceSession.create(CLS_MODEL_FILE);
    const direct = await session.run({ x: new ort.Tensor('float32', x, [3, 3, 48, 192]) });
    const want = direct[session.outputNames[0]!]!.data as Float32Array;
    await session.release();
    expect(res.outputs[0]!.shape.map(Number)).toEqual([...direct[session.outputNames[0]!]!.dims]);
    expect(got.length).toBe(want.length);
    want.forEach((v, i) => expect(got[i]).toBeCloseTo(v, 5));
  });

  it('concurrent raw-contents calls with distinct images each get their own answer (pooled, aligned messages go back only once settled)', async () => {
    type Res = { raw_output_contents: Buffer[] };
    const out = (r: Res): number[] => {
      const b = r.raw_output_contents[0]!;
      return Array.from(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
    };
    // An id of varying length shifts where the raw contents start in the message.
    const infer = async (seed: number, idLength = 0): Promise<number[]> =>
      out(
        await call<Res>(client, 'ModelInfer', {
          model_name: 'ppocr_cls',
          id: 'x'.repeat(idLength),
          inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192] }],
          raw_input_contents: [Buffer.from(noise(seed).buffer)],
        }),
      );
    // Noise of different seeds: ppocr_cls tells these apart far better than phase-shifted sines.
    const noise = (seed: number): Float32Array =>
      Float32Array.from({ length: CLS_ITEM }, (_, i) => ((Math.sin(i * 12.9898 + seed * 78.233) * 43758.5453) % 1) * 0.9);
    const seeds = Array.from({ length: 8 }, (_, i) => i + 1);
    const alone: number[][] = [];
    for (const s of seeds) alone.push(await infer(s));
    const gap = (a: number[], b: number[]): number => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
    for (let i = 0; i < seeds.length; i++) for (let j = 0; j < i; j++) expect(gap(alone[i]!, alone[j]!), `seeds ${i}, ${j}`).toBeGreaterThan(1e-3);
    // Eight clients, each calling in turn: new messages arrive while earlier ones are queued.
    await Promise.all(
      seeds.map(async (seed, i) => {
        for (let round = 0; round < 4; round++) expect(gap(await infer(seed, (i + round) % 8), alone[i]!), `seed ${i} round ${round}`).toBeLessThan(1e-5);
      }),
    );
  });

  it('INVALID_ARGUMENT for bad tensors, RESOURCE_EXHAUSTED past the message limit', async () => {
    const infer = (req: object): Promise<number> => codeOf(call(client, 'ModelInfer', req));
    expect(await infer({ model_name: 'scorer', inputs: [{ name: 'x', datatype: 'FP32', shape: [3, 1], contents: { fp32_contents: [1, 2] } }] })).toBe(
      status.INVALID_ARGUMENT,
    );
    expect(await infer({ model_name: 'scorer', inputs: [{ name: 'x', datatype: 'INT32', shape: [1, 1], contents: { int_contents: [1] } }] })).toBe(
      status.INVALID_ARGUMENT,
    );
    expect(await infer({ model_name: 'scorer', inputs: [{ name: 'x', datatype: 'NOPE', shape: [1, 1] }] })).toBe(status.INVALID_ARGUMENT);
    expect(await infer({ model_name: 'scorer', inputs: [{ name: 'x', datatype: 'FP32', shape: [-2, 1], contents: { fp32_contents: [] } }] })).toBe(
      status.INVALID_ARGUMENT,
    );
    expect(await infer({ model_name: 'scorer', inputs: [] })).toBe(status.INVALID_ARGUMENT);
    // raw bytes of the wrong length
    expect(
      await infer({ model_name: 'ppocr_cls', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192] }], raw_input_contents: [Buffer.alloc(12)] }),
    ).toBe(status.INVALID_ARGUMENT);
    expect(await infer({ model_name: 'nope', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], contents: { fp32_contents: [1] } }] })).toBe(
      status.NOT_FOUND,
    );
    // 5 MiB > the 4 MiB limit configured above
    const big = Buffer.alloc(5 * 1024 * 1024);
    expect(await infer({ model_name: 'ppocr_cls', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192] }], raw_input_contents: [big] })).toBe(
      status.RESOURCE_EXHAUSTED,
    );
  });

  it('UNAVAILABLE when the model queue is full', async () => {
    const one = clsInput(1, 2);
    const req = {
      model_name: 'cls_tiny_queue',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192] }],
      raw_input_contents: [Buffer.from(one.buffer)],
    };
    const codes = await Promise.all(Array.from({ length: 12 }, () => codeOf(call(client, 'ModelInfer', req))));
    expect(codes.filter((c) => c === status.OK).length).toBeGreaterThanOrEqual(1);
    expect(codes.filter((c) => c === status.UNAVAILABLE).length).toBeGreaterThanOrEqual(1);
    expect(codes.every((c) => c === status.OK || c === status.UNAVAILABLE)).toBe(true);
  });

  it("admission on the message's first bytes: UNAVAILABLE while the rest of the upload is still unsent", async () => {
    const one = clsInput(1, 3);
    const req = {
      model_name: 'cls_one_slot',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192] }],
      raw_input_contents: [Buffer.from(one.buffer)],
    };
    const first = call(client, 'ModelInfer', req); // queued, alone, for 1.5 s
    await new Promise((r) => setTimeout(r, 200));
    // model_name, the tensor's metadata and the first bytes of its contents; the upload is never ended.
    const answer = await answerWhileUploading(addr, grpcFrame(modelInferDef.requestSerialize(req)).subarray(0, 4096));
    expect(answer['grpc-status']).toBe(String(status.UNAVAILABLE));
    expect(Number(answer['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(await codeOf(first)).toBe(status.OK);
  });

  it('honours client deadlines: a request whose deadline passes while queued gets DEADLINE_EXCEEDED and never runs', async () => {
    // cls_slow_batch holds a lone request up to 2 s waiting for its batch to fill, so a request
    // with a 150 ms deadline is still queued when its deadline passes.
    const metric = async (name: string): Promise<number> => {
      const text = await (await fetch(`${gw.url}/metrics`)).text();
      const m = new RegExp(`${name}\\{model="cls_slow_batch"[^}]*\\} (\\d+)`).exec(text);
      return m ? Number(m[1]) : 0;
    };
    const tiny = clsInput(1, 4);
    const started = Date.now();
    const code = await codeOf(
      call(
        client,
        'ModelInfer',
        { model_name: 'cls_slow_batch', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192] }], raw_input_contents: [Buffer.from(tiny.buffer)] },
        150,
      ),
    );
    expect(code).toBe(status.DEADLINE_EXCEEDED);
    expect(Date.now() - started).toBeLessThan(1_500);
    await new Promise((r) => setTimeout(r, 100));
    // The server gave up on it while queued (counted as such) and never computed it.
    expect(await metric('tandem_inference_failures_total')).toBe(1);
    expect(await metric('tandem_inference_compute_seconds_count')).toBe(0);
  });
});
