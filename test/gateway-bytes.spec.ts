import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { credentials, loadPackageDefinition, Metadata, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { GrpcServerService } from '../apps/gateway/src/grpc/grpc-server.service';
import { createTestDatabase, type TestDatabase } from './support/test-env';
import { gatewayEnv } from './support/gateway-harness';

/** Returns its BYTES input as it came, and how many rows the batch it ran in held. */
const ECHO = `
import { defineModel } from '@tandem/sdk';
export default defineModel({
  execute({ b }) {
    const rows = b.shape[0];
    return { out: { datatype: 'BYTES', shape: b.shape, data: b.data }, rows: { datatype: 'INT32', shape: [rows, 1], data: new Int32Array(rows).fill(rows) } };
  },
});
`;

// Bytes no UTF-8 round trip would keep: NUL, 0xFF, a PNG signature; nothing; invalid UTF-8.
const RAW = [Buffer.from([0x00, 0xff, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(0), Buffer.from([0xc3, 0x28])];
const prefixed = (els: Buffer[]): Buffer => Buffer.concat(els.flatMap((b) => [Buffer.from(Uint32Array.of(b.length).buffer), b]));

interface GrpcResponse {
  outputs: { name: string; datatype: string; shape: string[]; contents?: { bytes_contents: Buffer[]; int_contents: number[] } }[];
  raw_output_contents: Buffer[];
}
type Infer = (req: object, md: Metadata, cb: (err: ServiceError | null, res: GrpcResponse) => void) => void;

describe('BYTES elements are raw bytes end to end (a node model echoing them)', () => {
  let db: TestDatabase;
  let gw: RunningGateway;
  let repo: string;

  beforeAll(async () => {
    repo = mkdtempSync(join(tmpdir(), 'tandem-bytes-'));
    mkdirSync(join(repo, 'echo', '1'), { recursive: true });
    writeFileSync(join(repo, 'echo', '1', 'model.ts'), ECHO);
    writeFileSync(
      join(repo, 'echo', 'config.json'),
      JSON.stringify({
        backend: 'node',
        max_batch_size: 8,
        // Long enough for two concurrent requests to share a batch.
        dynamic_batching: { max_queue_delay_us: 500_000 },
        inputs: [{ name: 'b', datatype: 'BYTES', shape: [-1, 1] }],
        outputs: [
          { name: 'out', datatype: 'BYTES', shape: [-1, 1] },
          { name: 'rows', datatype: 'INT32', shape: [-1, 1] },
        ],
      }),
    );
    db = await createTestDatabase();
    gw = await startGateway(loadGatewayConfig({ ...gatewayEnv(db.url), MODEL_REPOSITORY: repo }));
  });

  afterAll(async () => {
    await gw?.app.close();
    await db?.drop();
    if (repo) rmSync(repo, { recursive: true, force: true });
  });

  /** REST with the binary tensor extension: elements in, the `out` section and `rows` back. */
  async function restBinary(els: Buffer[]): Promise<{ out: Buffer; rows: number }> {
    const wire = prefixed(els);
    const header = Buffer.from(
      JSON.stringify({
        inputs: [{ name: 'b', datatype: 'BYTES', shape: [els.length, 1], parameters: { binary_data_size: wire.length } }],
        parameters: { binary_data_output: true },
      }),
    );
    const res = await fetch(`${gw.url}/v2/models/echo/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
      body: Buffer.concat([header, wire]),
    });
    expect(res.status).toBe(200);
    const buf = Buffer.from(await res.arrayBuffer());
    const n = Number(res.headers.get('inference-header-content-length'));
    const h = JSON.parse(buf.subarray(0, n).toString()) as { outputs: { name: string; parameters: { binary_data_size: number } }[] };
    const [o, r] = h.outputs;
    const out = buf.subarray(n, n + o!.parameters.binary_data_size);
    const rows = buf.readInt32LE(n + o!.parameters.binary_data_size);
    expect([o!.name, r!.name]).toEqual(['out', 'rows']);
    return { out, rows };
  }

  it('REST binary in → binary out, byte for byte, also when two requests share a batch', async () => {
    const a = [RAW[0]!];
    const b = [RAW[1]!, RAW[2]!];
    const [ra, rb] = await Promise.all([restBinary(a), restBinary(b)]);
    expect(ra.out.equals(prefixed(a))).toBe(true);
    expect(rb.out.equals(prefixed(b))).toBe(true);
    // Merged by the dynamic batcher into one run of 3 rows, then split back.
    expect([ra.rows, rb.rows]).toEqual([3, 3]);
  });

  it('JSON strings are their UTF-8 bytes, and come back as the same strings', async () => {
    const res = await fetch(`${gw.url}/v2/models/echo/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'b', datatype: 'BYTES', shape: [2, 1], data: ['héllo', ''] }], outputs: [{ name: 'out' }] }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { outputs: { data: string[] }[] };
    expect(body.outputs[0]!.data).toEqual(['héllo', '']);
  });

  it('gRPC raw_input_contents in → raw_output_contents out, bytes_contents in → bytes_contents out', async () => {
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
    const client = new pkg.inference.GRPCInferenceService(`127.0.0.1:${gw.app.get(GrpcServerService).port}`, credentials.createInsecure());
    const infer = (req: object): Promise<GrpcResponse> => new Promise((ok, fail) => client.ModelInfer(req, new Metadata(), (e, r) => (e ? fail(e) : ok(r))));
    try {
      const input = { name: 'b', datatype: 'BYTES', shape: [RAW.length, 1] };
      const raw = await infer({ model_name: 'echo', inputs: [input], outputs: [{ name: 'out' }], raw_input_contents: [prefixed(RAW)] });
      expect(raw.raw_output_contents).toHaveLength(1);
      expect(raw.raw_output_contents[0]!.equals(prefixed(RAW))).toBe(true);
      const typed = await infer({ model_name: 'echo', inputs: [{ ...input, contents: { bytes_contents: RAW } }], outputs: [{ name: 'out' }] });
      expect(typed.outputs[0]!.contents!.bytes_contents.map((b) => b.toString('hex'))).toEqual(RAW.map((b) => b.toString('hex')));
    } finally {
      client.close();
    }
  });
});
