import { resolve } from 'node:path';
import { credentials, loadPackageDefinition, Metadata, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { inferMessage, grpcRawClosedLoop } from './support/grpc-load';
import { closedLoop, type Target } from './support/http-load';

/** bench:overhead's load client, a process of its own (its CPU must not count as a server's). */

/** `grpc`: grpc-js's client; `grpcraw`: the raw HTTP/2 client (support/grpc-load.ts), as cheap per call as the REST client. */
export type Transport = 'json' | 'binary' | 'grpc' | 'grpcraw';

export interface Phase {
  transport: Transport;
  /** FP32 elements of the one [1, n] input. */
  elements: number;
  seconds: number;
  concurrency: number;
  httpPort: number;
  grpcAddr: string;
  path: string;
  key?: string;
}

export interface PhaseResult {
  ok: number;
  errors: number;
  seconds: number;
  firstError?: string;
}

const PROTO_DIR = resolve(__dirname, '..', 'apps', 'gateway', 'src', 'grpc', 'proto');

const tensor = (n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => ((i * 7919) % 1000) / 1000);

function httpTarget(p: Phase): Target {
  const x = tensor(p.elements);
  const auth: Record<string, string> = p.key ? { authorization: `Bearer ${p.key}` } : {};
  if (p.transport === 'json') {
    const body = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [1, p.elements], datatype: 'FP32', data: Array.from(x) }] }));
    return { port: p.httpPort, path: p.path, body, headers: { 'content-type': 'application/json', ...auth } };
  }
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'x', shape: [1, p.elements], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }],
      outputs: [{ name: 'y', parameters: { binary_data: true } }],
    }),
  );
  return {
    port: p.httpPort,
    path: p.path,
    body: Buffer.concat([header, Buffer.from(x.buffer)]),
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length), ...auth },
  };
}

type InferClient = { ModelInfer: (req: object, md: Metadata, cb: (e: ServiceError | null) => void) => void; close(): void };
const clients = new Map<string, InferClient[]>();

function grpcClients(addr: string): InferClient[] {
  let cs = clients.get(addr);
  if (cs) return cs;
  const defs = loadSync(resolve(PROTO_DIR, 'grpc_service.proto'), {
    keepCase: true,
    longs: String,
    defaults: true,
    oneofs: true,
  });
  type Ctor = new (a: string, c: ReturnType<typeof credentials.createInsecure>, o: object) => InferClient;
  const Svc = (loadPackageDefinition(defs) as unknown as { inference: { GRPCInferenceService: Ctor } }).inference.GRPCInferenceService;
  // Several channels, as bench:online does: one HTTP/2 connection would serialize large messages.
  cs = Array.from(
    { length: 4 },
    () => new Svc(addr, credentials.createInsecure(), { 'grpc.max_send_message_length': 64 << 20, 'grpc.max_receive_message_length': 64 << 20 }),
  );
  clients.set(addr, cs);
  return cs;
}

async function grpcLoop(p: Phase): Promise<PhaseResult> {
  const cs = grpcClients(p.grpcAddr);
  const req = {
    model_name: 'null',
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1, p.elements] }],
    raw_input_contents: [Buffer.from(tensor(p.elements).buffer)],
  };
  const meta = new Metadata();
  if (p.key) meta.set('authorization', `Bearer ${p.key}`);
  let ok = 0;
  let errors = 0;
  let firstError: string | undefined;
  const start = performance.now();
  const end = start + p.seconds * 1000;
  await Promise.all(
    Array.from({ length: p.concurrency }, async (_, i) => {
      const c = cs[i % cs.length]!;
      while (performance.now() < end) {
        const e = await new Promise<ServiceError | null>((done) => c.ModelInfer(req, meta, done));
        if (!e) ok++;
        else {
          errors++;
          firstError ??= `${e.code} ${e.details}`;
        }
      }
    }),
  );
  return { ok, errors, seconds: (performance.now() - start) / 1000, ...(firstError ? { firstError } : {}) };
}

const messages = new Map<number, Buffer>();

async function grpcRawLoop(p: Phase): Promise<PhaseResult> {
  let msg = messages.get(p.elements);
  if (!msg) messages.set(p.elements, (msg = inferMessage(PROTO_DIR, 'null', [1, p.elements], tensor(p.elements))));
  const r = await grpcRawClosedLoop(p.grpcAddr, msg, p.concurrency, p.seconds, p.key, 4);
  return { ok: r.ok, errors: r.errors, seconds: r.seconds };
}

export async function runClientPhase(p: Phase): Promise<PhaseResult> {
  if (p.transport === 'grpc') return grpcLoop(p);
  if (p.transport === 'grpcraw') return grpcRawLoop(p);
  const r = await closedLoop(httpTarget(p), p.concurrency, p.seconds);
  return { ok: r.ok, errors: r.errors, seconds: r.seconds };
}

if (process.send) {
  process.on('message', (p: Phase) => {
    void runClientPhase(p).then((r) => process.send!(r));
  });
}
