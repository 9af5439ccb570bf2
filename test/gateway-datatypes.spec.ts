import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { credentials, loadPackageDefinition, Metadata, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { GrpcServerService } from '../apps/gateway/src/grpc/grpc-server.service';
import { buildIdentityModel } from '../scripts/generate-models';
import { createTestDatabase, type TestDatabase } from './support/test-env';
import { gatewayEnv } from './support/gateway-harness';

// JSON values per OIP datatype, shape [2, 2]; each is exactly representable in its type.
const VALUES: Record<string, (number | boolean | string)[]> = {
  BOOL: [true, false, false, true],
  UINT8: [0, 1, 254, 255],
  UINT16: [0, 1, 65534, 65535],
  UINT32: [0, 1, 4294967294, 4294967295],
  UINT64: [0, 1, 2 ** 40, Number.MAX_SAFE_INTEGER],
  INT8: [-128, -1, 0, 127],
  INT16: [-32768, -1, 0, 32767],
  INT32: [-2147483648, -1, 0, 2147483647],
  INT64: [Number.MIN_SAFE_INTEGER, -1, 0, Number.MAX_SAFE_INTEGER],
  FP16: [0.5, -2, 1.25, 65504],
  FP32: [0.5, -1.75, 2 ** 100, 1024],
  FP64: [0.1, -1e300, 5e-324, 2.5],
  BYTES: ['a', 'héllo', '', 'zz'],
};

/** Little-endian wire bytes of VALUES[dt] (what a Triton client sends). */
function wire(dt: string): Buffer {
  const v = VALUES[dt]!;
  const put = <T>(size: number, f: (b: Buffer, x: T, o: number) => unknown) => {
    const b = Buffer.alloc(size * v.length);
    v.forEach((x, i) => f(b, x as T, i * size));
    return b;
  };
  switch (dt) {
    case 'BOOL':
      return put<boolean>(1, (b, x, o) => b.writeUInt8(x ? 1 : 0, o));
    case 'UINT8':
      return put<number>(1, (b, x, o) => b.writeUInt8(x, o));
    case 'INT8':
      return put<number>(1, (b, x, o) => b.writeInt8(x, o));
    case 'UINT16':
      return put<number>(2, (b, x, o) => b.writeUInt16LE(x, o));
    case 'INT16':
      return put<number>(2, (b, x, o) => b.writeInt16LE(x, o));
    case 'UINT32':
      return put<number>(4, (b, x, o) => b.writeUInt32LE(x, o));
    case 'INT32':
      return put<number>(4, (b, x, o) => b.writeInt32LE(x, o));
    case 'UINT64':
      return put<number>(8, (b, x, o) => b.writeBigUInt64LE(BigInt(x), o));
    case 'INT64':
      return put<number>(8, (b, x, o) => b.writeBigInt64LE(BigInt(x), o));
    case 'FP16':
      return Buffer.from([0x00, 0x38, 0x00, 0xc0, 0x00, 0x3d, 0xff, 0x7b]); // 0.5, -2, 1.25, 65504
    case 'FP32':
      return put<number>(4, (b, x, o) => b.writeFloatLE(x, o));
    case 'FP64':
      return put<number>(8, (b, x, o) => b.writeDoubleLE(x, o));
    default:
      return Buffer.concat(v.flatMap((s) => [Buffer.from(Uint32Array.of(Buffer.byteLength(s as string)).buffer), Buffer.from(s as string)]));
  }
}

type Infer = (req: object, md: Metadata, cb: (err: ServiceError | null, res: GrpcResponse) => void) => void;
interface GrpcResponse {
  outputs: { name: string; datatype: string; shape: string[]; contents?: { bytes_contents: Buffer[] } }[];
  raw_output_contents: Buffer[];
}
/** A KServe gRPC client generated from the project's .proto, as any OIP client would be. */
function grpcClient(addr: string): { infer(req: object): Promise<GrpcResponse>; close(): void } {
  const defs = loadSync(resolve(process.cwd(), 'apps/gateway/src/grpc/proto/grpc_service.proto'), {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = loadPackageDefinition(defs) as unknown as {
    inference: { GRPCInferenceService: new (a: string, c: ReturnType<typeof credentials.createInsecure>) => { ModelInfer: Infer; close(): void } };
  };
  const c = new pkg.inference.GRPCInferenceService(addr, credentials.createInsecure());
  return {
    infer: (req) => new Promise((ok, fail) => c.ModelInfer(req, new Metadata(), (err, res) => (err ? fail(err) : ok(res)))),
    close: () => c.close(),
  };
}

describe('every OIP datatype onnxruntime supports round-trips through an Identity model', () => {
  let db: TestDatabase;
  let gw: RunningGateway;
  let repo: string;
  const types = Object.keys(VALUES);

  beforeAll(async () => {
    repo = mkdtempSync(join(tmpdir(), 'tandem-dt-'));
    mkdirSync(join(repo, 'identity', '1'), { recursive: true });
    writeFileSync(join(repo, 'identity', '1', 'model.onnx'), buildIdentityModel());
    writeFileSync(join(repo, 'identity', 'config.json'), JSON.stringify({ max_batch_size: 8 }));
    mkdirSync(join(repo, 'identity_bytes', '1'), { recursive: true });
    writeFileSync(join(repo, 'identity_bytes', '1', 'model.onnx'), buildIdentityModel(['BYTES']));
    writeFileSync(join(repo, 'identity_bytes', 'config.json'), JSON.stringify({ max_batch_size: 8 }));
    // A model whose file is not ONNX: the gateway still serves the others but is not ready.
    mkdirSync(join(repo, 'broken', '1'), { recursive: true });
    writeFileSync(join(repo, 'broken', '1', 'model.onnx'), 'not a model');
    db = await createTestDatabase();
    gw = await startGateway(
      loadGatewayConfig({
        ...gatewayEnv(db.url),
        MODEL_REPOSITORY: repo,
      }),
    );
  });

  afterAll(async () => {
    await gw?.app.close();
    await db?.drop();
    rmSync(repo, { recursive: true, force: true });
  });

  it('a model that fails to load makes the gateway not ready (the open endpoint names the component; the model says why); the others still serve', async () => {
    const ready = await fetch(`${gw.url}/v2/health/ready`);
    expect(ready.status).toBe(503);
    const body = (await ready.json()) as { error: string; checks: Record<string, string> };
    expect(body.checks.models).toBe('failing');
    expect(body.error).toBe('not ready: models failing');
    const broken = await fetch(`${gw.url}/v2/models/broken/ready`);
    expect(broken.status).toBe(400);
    expect(await broken.json()).toEqual({ name: 'broken', ready: false, reason: expect.stringMatching(/protobuf|load|model/i) });
    expect((await fetch(`${gw.url}/v2/models/identity/ready`)).status).toBe(200);
    const infer = await fetch(`${gw.url}/v2/models/broken/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }] }),
    });
    expect(infer.status).toBe(503);
    expect(await infer.json()).toEqual({ error: expect.stringMatching(/^model 'broken' version 1 failed to load: /) });
  });

  it('reports every datatype in the metadata', async () => {
    const meta = (await (await fetch(`${gw.url}/v2/models/identity`)).json()) as { inputs: { name: string; datatype: string; shape: number[] }[] };
    const byName = (a: [string, string, number[]], b: [string, string, number[]]) => a[0].localeCompare(b[0]);
    const got = meta.inputs.map((i): [string, string, number[]] => [i.name, i.datatype, i.shape]).sort(byName);
    expect(got).toEqual(types.map((t): [string, string, number[]] => [`in_${t}`, t, [-1, 2]]).sort(byName));
  });

  it('JSON in, JSON out', async () => {
    const res = await fetch(`${gw.url}/v2/models/identity/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: types.map((t) => ({ name: `in_${t}`, datatype: t, shape: [2, 2], data: VALUES[t] })) }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { outputs: { name: string; datatype: string; shape: number[]; data: unknown[] }[] };
    for (const t of types) {
      const o = body.outputs.find((x) => x.name === `out_${t}`)!;
      expect([o.datatype, o.shape], t).toEqual([t, [2, 2]]);
      expect(o.data, t).toEqual(VALUES[t]);
    }
  });

  it('binary in, binary out: the bytes come back unchanged', async () => {
    const header = Buffer.from(
      JSON.stringify({
        inputs: types.map((t) => ({ name: `in_${t}`, datatype: t, shape: [2, 2], parameters: { binary_data_size: wire(t).length } })),
        parameters: { binary_data_output: true },
      }),
    );
    const res = await fetch(`${gw.url}/v2/models/identity/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
      body: Buffer.concat([header, ...types.map(wire)]),
    });
    expect(res.status).toBe(200);
    const buf = Buffer.from(await res.arrayBuffer());
    const n = Number(res.headers.get('inference-header-content-length'));
    const h = JSON.parse(buf.subarray(0, n).toString()) as { outputs: { name: string; parameters: { binary_data_size: number } }[] };
    let off = n;
    for (const o of h.outputs) {
      const t = o.name.slice(4);
      const size = o.parameters.binary_data_size;
      expect(buf.subarray(off, off + size).equals(wire(t)), t).toBe(true);
      off += size;
    }
    expect(off).toBe(buf.length);
  });

  it('gRPC raw in, raw out: the bytes come back unchanged; BYTES in bytes_contents come back as sent', async () => {
    const grpc = grpcClient(`127.0.0.1:${gw.app.get(GrpcServerService).port}`);
    try {
      const raw = await grpc.infer({
        model_name: 'identity',
        inputs: types.map((t) => ({ name: `in_${t}`, datatype: t, shape: [2, 2] })),
        raw_input_contents: types.map(wire),
      });
      expect(raw.raw_output_contents).toHaveLength(types.length);
      raw.outputs.forEach((o, i) => expect(raw.raw_output_contents[i]!.equals(wire(o.name.slice(4))), o.name).toBe(true));
      const text = (VALUES.BYTES as string[]).map((s) => Buffer.from(s));
      const typed = await grpc.infer({
        model_name: 'identity_bytes',
        inputs: [{ name: 'in_BYTES', datatype: 'BYTES', shape: [2, 2], contents: { bytes_contents: text } }],
      });
      expect(typed.outputs[0]!.contents!.bytes_contents.map(String)).toEqual(VALUES.BYTES);
    } finally {
      grpc.close();
    }
  });
});
