import { InferenceSession, Tensor } from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { requestBodies } from '../apps/gateway/src/inference/body-pool';
import { createTestDatabase, type TestDatabase } from './support/test-env';
import { gatewayEnv } from './support/gateway-harness';

const CLS_OUT = 'softmax_0.tmp_0';
const CLS_ITEM = 3 * 48 * 192;

/** Deterministic pseudo-image in [0,1). */
function image(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n * CLS_ITEM }, (_, i) => ((i * 7919 + seed * 104729) % 1000) / 1000);
}

function expectTanh(got: number[], xs: number[]): void {
  expect(got).toHaveLength(xs.length);
  xs.forEach((v, i) => expect(got[i]).toBeCloseTo(Math.tanh(v), 6));
}

/** OIP binary request body: JSON header then raw tensor bytes. */
function binaryBody(header: object, ...tensors: ArrayBufferView[]): { body: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header));
  const parts = tensors.map((t) => Buffer.from(t.buffer, t.byteOffset, t.byteLength));
  return { body: Buffer.concat([json, ...parts]), headerLength: json.length };
}

describe('OIP v2 REST over a real socket (shipped model repository)', () => {
  let db: TestDatabase;
  let gw: RunningGateway;
  let raw: InferenceSession;
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${gw.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' || Buffer.isBuffer(body) ? (body as string) : JSON.stringify(body),
    });

  beforeAll(async () => {
    db = await createTestDatabase();
    gw = await startGateway(
      loadGatewayConfig({
        ...gatewayEnv(db.url),
        GATEWAY_BODY_LIMIT_MB: '8',
      }),
    );
    raw = await InferenceSession.create('models/ppocr_cls/1/model.onnx');
  });

  afterAll(async () => {
    await gw?.app.close();
    await raw?.release();
    await db?.drop();
  });

  it('serves server metadata, model metadata and readiness', async () => {
    const server = await (await fetch(`${gw.url}/v2`)).json();
    expect(server).toEqual({ name: 'tandem', version: expect.any(String), extensions: expect.arrayContaining(['binary_tensor_data']) });
    const cls = await fetch(`${gw.url}/v2/models/ppocr_cls`);
    expect(cls.status).toBe(200);
    expect(await cls.json()).toEqual({
      name: 'ppocr_cls',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, 48, 192] }],
      outputs: [{ name: CLS_OUT, datatype: 'FP32', shape: [-1, 2] }],
    });
    const scorer = await (await fetch(`${gw.url}/v2/models/scorer/versions/1`)).json();
    expect(scorer).toMatchObject({
      name: 'scorer',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 1] }],
      outputs: [{ name: 'score', datatype: 'FP32', shape: [-1, 1] }],
    });
    expect((await fetch(`${gw.url}/v2/models/scorer/ready`)).status).toBe(200);
    expect(await (await fetch(`${gw.url}/v2/models/scorer/versions/1/ready`)).json()).toEqual({ name: 'scorer', version: '1', ready: true });
    const ready = await fetch(`${gw.url}/v2/health/ready`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { checks: Record<string, string> }).checks.models).toBe('ok');
  });

  it('infers the scorer over JSON (nested data), echoing the id', async () => {
    const res = await post('/v2/models/scorer/infer', {
      id: 'req-42',
      inputs: [{ name: 'x', shape: [3, 1], datatype: 'FP32', data: [[-1], [0], [0.5]] }],
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      id: string;
      model_name: string;
      model_version: string;
      outputs: { name: string; datatype: string; shape: number[]; data: number[] }[];
    };
    expect(body).toMatchObject({ id: 'req-42', model_name: 'scorer', model_version: '1' });
    expect(body.outputs).toHaveLength(1);
    expect(body.outputs[0]).toMatchObject({ name: 'score', datatype: 'FP32', shape: [3, 1] });
    expectTanh(body.outputs[0]!.data, [-1, 0, 0.5]);
  });

  it('infers ppocr_cls over JSON with outputs equal to a direct onnxruntime run', async () => {
    const x = image(1, 1);
    const ref = (await raw.run({ x: new Tensor('float32', x, [1, 3, 48, 192]) }))[CLS_OUT]!.data as Float32Array;
    const res = await post('/v2/models/ppocr_cls/versions/1/infer', {
      inputs: [{ name: 'x', shape: [1, 3, 48, 192], datatype: 'FP32', data: Array.from(x) }],
      outputs: [{ name: CLS_OUT }],
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { outputs: { shape: number[]; data: number[] }[] };
    expect(body.outputs[0]!.shape).toEqual([1, 2]);
    expect(body.outputs[0]!.data).toEqual(Array.from(ref));
  });

  it('infers ppocr_cls with binary tensors in and out, equal to a direct onnxruntime run', async () => {
    const x = image(2, 2);
    const ref = (await raw.run({ x: new Tensor('float32', x, [2, 3, 48, 192]) }))[CLS_OUT]!.data as Float32Array;
    const { body, headerLength } = binaryBody(
      {
        id: 'bin-1',
        inputs: [{ name: 'x', shape: [2, 3, 48, 192], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }],
        outputs: [{ name: CLS_OUT, parameters: { binary_data: true } }],
      },
      x,
    );
    const res = await post('/v2/models/ppocr_cls/infer', body, {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(headerLength),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    const n = Number(res.headers.get('inference-header-content-length'));
    const buf = Buffer.from(await res.arrayBuffer());
    const header = JSON.parse(buf.subarray(0, n).toString()) as {
      id: string;
      outputs: { name: string; shape: number[]; parameters: { binary_data_size: number } }[];
    };
    expect(header.id).toBe('bin-1');
    expect(header.outputs[0]).toEqual({ name: CLS_OUT, datatype: 'FP32', shape: [2, 2], parameters: { binary_data_size: 16 } });
    const out = new Float32Array(buf.buffer.slice(buf.byteOffset + n, buf.byteOffset + n + 16));
    expect(Array.from(out)).toEqual(Array.from(ref));
  });

  it('recycled binary bodies never mix: concurrent requests, some refused, each get their own answer', async () => {
    // Bodies come from a pool and go back once the request's inference settled; a buffer given
    // back too early would hand one request's bytes to another (or to a merged batch).
    const send = async (model: string, x: Float32Array, shape: number[]): Promise<{ status: number; out?: Float32Array }> => {
      const { body, headerLength } = binaryBody(
        { inputs: [{ name: 'x', shape, datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }], parameters: { binary_data_output: true } },
        x,
      );
      const res = await post(`/v2/models/${model}/infer`, body, {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': String(headerLength),
      });
      if (res.status !== 200) return { status: res.status };
      const buf = Buffer.from(await res.arrayBuffer());
      const n = Number(res.headers.get('inference-header-content-length'));
      return { status: 200, out: new Float32Array(buf.buffer.slice(buf.byteOffset + n)) };
    };
    for (let wave = 0; wave < 3; wave++) {
      const images = Array.from({ length: 24 }, (_, i) => image(1, 1000 * wave + i));
      const scores = Array.from({ length: 200 }, (_, i) => Float32Array.from([(i - 100) / 37 + wave, (wave - i) / 53]));
      const [cls, scored, refused] = await Promise.all([
        Promise.all(images.map((x) => send('ppocr_cls', x, [1, 3, 48, 192]))),
        Promise.all(scores.map((x) => send('scorer', x, [2, 1]))),
        // Declared shape larger than the bytes sent: 400 after the body was read.
        Promise.all(Array.from({ length: 20 }, (_, i) => send('scorer', Float32Array.from([i, i]), [3, 1]))),
      ]);
      for (const [i, x] of images.entries()) {
        const ref = (await raw.run({ x: new Tensor('float32', x, [1, 3, 48, 192]) }))[CLS_OUT]!.data as Float32Array;
        expect(cls[i]!.status).toBe(200);
        Array.from(ref).forEach((v, j) => expect(cls[i]!.out![j]).toBeCloseTo(v, 5));
      }
      for (const [i, x] of scores.entries()) {
        expect(scored[i]!.status).toBe(200);
        expectTanh(Array.from(scored[i]!.out!), Array.from(x));
      }
      expect(refused.map((r) => r.status)).toEqual(Array.from({ length: 20 }, () => 400));
    }
    expect(requestBodies.idleBytes).toBeGreaterThan(0); // the bodies did go back to the pool
  });

  it('binary_data_output returns every output in binary; JSON-only outputs stay JSON', async () => {
    const x = Float32Array.from([0.25, -0.75]);
    const { body, headerLength } = binaryBody(
      { inputs: [{ name: 'x', shape: [2, 1], datatype: 'FP32', parameters: { binary_data_size: 8 } }], parameters: { binary_data_output: true } },
      x,
    );
    const res = await post('/v2/models/scorer/infer', body, {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(headerLength),
    });
    expect(res.status).toBe(200);
    const n = Number(res.headers.get('inference-header-content-length'));
    const buf = Buffer.from(await res.arrayBuffer());
    expect(buf.length).toBe(n + 8);
    expectTanh([buf.readFloatLE(n), buf.readFloatLE(n + 4)], [0.25, -0.75]);

    // Binary input, JSON output (no binary_data flags).
    const plain = binaryBody({ inputs: [{ name: 'x', shape: [2, 1], datatype: 'FP32', parameters: { binary_data_size: 8 } }] }, x);
    const json = await post('/v2/models/scorer/infer', plain.body, {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(plain.headerLength),
    });
    expect(json.status).toBe(200);
    expect(json.headers.get('content-type')).toMatch(/application\/json/);
    expectTanh(((await json.json()) as { outputs: { data: number[] }[] }).outputs[0]!.data, [0.25, -0.75]);
  });
});
