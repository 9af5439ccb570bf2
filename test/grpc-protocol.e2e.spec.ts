import { connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { resolve } from 'node:path';
import { credentials, loadPackageDefinition, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { loadSync, type MethodDefinition } from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { GrpcServerService } from '../apps/gateway/src/grpc/grpc-server.service';
import { tempModelRepo, type TempRepo } from './support/model-repo';
import { createTestDatabase, type TestDatabase } from './support/test-env';
import { gatewayEnv } from './support/gateway-harness';
import { grpcFrame } from './support/grpc-raw';

/**
 * The gRPC server's protocol edges (it is ours, on node:http2): what grpc-js's server used to
 * answer, checked with a raw HTTP/2 client where a gRPC client cannot misbehave on purpose.
 */
const PROTO = resolve(process.cwd(), 'apps/gateway/src/grpc/proto');
const OPTS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };
const defs = loadSync([resolve(PROTO, 'grpc_service.proto'), resolve(PROTO, 'health.proto')], OPTS);
type Callback = (err: ServiceError | null, res: Record<string, unknown>) => void;
type Client = Record<string, (req: object, md: Metadata, cb: Callback) => void> & { close(): void };
type Stream = NodeJS.EventEmitter & { cancel(): void };
const pkg = loadPackageDefinition(defs) as unknown as {
  inference: { GRPCInferenceService: new (addr: string, creds: ReturnType<typeof credentials.createInsecure>, o?: object) => Client };
  grpc: {
    health: { v1: { Health: new (addr: string, creds: ReturnType<typeof credentials.createInsecure>) => { Watch(req: object): Stream; close(): void } } };
  };
};
const modelInfer = (defs['inference.GRPCInferenceService'] as Record<string, MethodDefinition<object, object>>).ModelInfer!;

interface RawAnswer {
  headers: IncomingHttpHeaders;
  trailers?: IncomingHttpHeaders;
  body: Buffer;
}

/** One request on a raw HTTP/2 session; `end: false` leaves the upload open (the server must answer anyway). */
function raw(session: ClientHttp2Session, headers: Record<string, string>, body: Buffer, end = true): Promise<RawAnswer> {
  return new Promise((ok, fail) => {
    const req = session.request({ ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers', ...headers });
    const out: RawAnswer = { headers: {}, body: Buffer.alloc(0) };
    req.on('response', (h) => (out.headers = h));
    req.on('trailers', (t) => (out.trailers = t));
    req.on('data', (d: Buffer) => (out.body = Buffer.concat([out.body, d])));
    req.on('close', () => ok(out));
    req.on('error', fail);
    if (headers[':method'] === 'GET') return; // node:http2 ends a GET's stream itself
    if (end) req.end(body);
    else req.write(body);
  });
}

const grpcStatus = (a: RawAnswer): string | undefined => (a.trailers?.['grpc-status'] ?? a.headers['grpc-status']) as string | undefined;

describe('gRPC over node:http2: protocol edges', () => {
  let db: TestDatabase;
  let repo: TempRepo;
  let gw: RunningGateway;
  let addr: string;
  let session: ClientHttp2Session;

  beforeAll(async () => {
    db = await createTestDatabase();
    repo = tempModelRepo({ scorer: { from: 'scorer', config: { max_batch_size: 64, inputs: [{ name: 'x', shape: [-1, 1] }] } } });
    gw = await startGateway(loadGatewayConfig({ ...gatewayEnv(db.url), MODEL_REPOSITORY: repo.dir, GATEWAY_GRPC_MAX_MESSAGE_MB: '1' }));
    addr = `127.0.0.1:${gw.app.get(GrpcServerService).port}`;
    session = connect(`http://${addr}`);
  });

  afterAll(async () => {
    session?.close();
    await gw?.app.close();
    await db?.drop();
    repo?.remove();
  });

  const scorerRequest = (x: number): Buffer =>
    modelInfer.requestSerialize({ model_name: 'scorer', id: 'r1', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], contents: { fp32_contents: [x] } }] });

  it('a framed ModelInfer answers 200 with one framed message and grpc-status 0 in the trailers', async () => {
    const a = await raw(session, { ':path': '/inference.GRPCInferenceService/ModelInfer' }, grpcFrame(scorerRequest(0.5)));
    expect(a.headers[':status']).toBe(200);
    expect(a.headers['content-type']).toBe('application/grpc+proto');
    expect(grpcStatus(a)).toBe('0');
    expect(a.body.readUInt32BE(1)).toBe(a.body.length - 5);
    const res = modelInfer.responseDeserialize(a.body.subarray(5)) as { id: string; outputs: { contents: { fp32_contents: number[] } }[] };
    expect(res.id).toBe('r1');
    expect(res.outputs[0]!.contents.fp32_contents[0]).toBeCloseTo(Math.tanh(0.5), 6);
  });

  it('not gRPC: 405 for GET, 415 for another content-type; an unknown method is UNIMPLEMENTED', async () => {
    expect((await raw(session, { ':method': 'GET', ':path': '/inference.GRPCInferenceService/ServerLive' }, Buffer.alloc(0))).headers[':status']).toBe(405);
    expect(
      (await raw(session, { ':path': '/inference.GRPCInferenceService/ServerLive', 'content-type': 'application/json' }, Buffer.from('{}'))).headers[':status'],
    ).toBe(415);
    const a = await raw(session, { ':path': '/inference.GRPCInferenceService/Nope' }, grpcFrame(Buffer.alloc(0)));
    expect(grpcStatus(a)).toBe(String(status.UNIMPLEMENTED));
    expect(decodeURI(String(a.headers['grpc-message']))).toContain('/inference.GRPCInferenceService/Nope');
  });

  it('the size limit is checked on the message prefix: RESOURCE_EXHAUSTED while the upload is still open', async () => {
    const prefix = Buffer.from([0, 0x10, 0, 0, 0]); // announces 256 MiB, sends none of it
    const a = await raw(session, { ':path': '/inference.GRPCInferenceService/ModelInfer' }, prefix, false);
    expect(grpcStatus(a)).toBe(String(status.RESOURCE_EXHAUSTED));
    expect(decodeURI(String(a.headers['grpc-message']))).toBe(`Received message larger than max (${0x10000000} vs. ${1 << 20})`);
  });

  it('framing errors: no message, two messages, a message cut short, a bad grpc-timeout, an unknown grpc-encoding, garbage protobuf', async () => {
    const path = { ':path': '/inference.GRPCInferenceService/ModelReady' };
    const ready = modelInfer.requestSerialize({ model_name: 'x' }); // field 1, a string: also a valid ModelReadyRequest
    expect(grpcStatus(await raw(session, path, Buffer.alloc(0)))).toBe(String(status.UNIMPLEMENTED));
    expect(grpcStatus(await raw(session, path, Buffer.concat([grpcFrame(ready), grpcFrame(ready)])))).toBe(String(status.UNIMPLEMENTED));
    expect(grpcStatus(await raw(session, path, grpcFrame(ready).subarray(0, 7)))).toBe(String(status.INTERNAL));
    expect(grpcStatus(await raw(session, { ...path, 'grpc-timeout': '10x' }, grpcFrame(ready)))).toBe(String(status.OUT_OF_RANGE));
    for (const encoding of ['br', 'toString'])
      expect(grpcStatus(await raw(session, { ...path, 'grpc-encoding': encoding }, grpcFrame(ready, 1)))).toBe(String(status.UNIMPLEMENTED));
    // Field 3, announced 5 bytes long, 1 sent (protobufjs reads most other garbage leniently).
    const garbage = await raw(session, path, grpcFrame(Buffer.from([0x1a, 0x05, 1])));
    expect(grpcStatus(garbage)).toBe(String(status.INVALID_ARGUMENT));
    expect(decodeURI(String(garbage.headers['grpc-message']))).toMatch(/^malformed request message/);
  });

  it('a percent-encoded grpc-message round-trips through grpc-js; gzip-compressed requests are read', async () => {
    const gz = new pkg.inference.GRPCInferenceService(addr, credentials.createInsecure(), { 'grpc.default_compression_algorithm': 2 });
    try {
      const res = await new Promise<Record<string, unknown>>((ok, fail) =>
        gz.ModelInfer!(
          { model_name: 'scorer', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], contents: { fp32_contents: [0.25] } }] },
          new Metadata(),
          (e, r) => (e ? fail(e) : ok(r)),
        ),
      );
      expect((res.outputs as { contents: { fp32_contents: number[] } }[])[0]!.contents.fp32_contents[0]).toBeCloseTo(Math.tanh(0.25), 6);
      const err = await new Promise<ServiceError>((ok) => gz.ModelMetadata!({ name: 'modèle 100%', version: '' }, new Metadata(), (e) => ok(e!)));
      expect(err.code).toBe(status.NOT_FOUND);
      expect(err.details).toBe("unknown model 'modèle 100%'");
    } finally {
      gz.close();
    }
  });

  it('health Watch streams SERVING, and SERVICE_UNKNOWN for other services, until the client cancels', async () => {
    const h = new pkg.grpc.health.v1.Health(addr, credentials.createInsecure());
    try {
      for (const [service, expected] of [
        ['', 'SERVING'],
        ['nope', 'SERVICE_UNKNOWN'],
      ]) {
        const w = h.Watch({ service });
        const first = await new Promise<{ status: string }>((ok) => w.once('data', ok));
        expect(first.status).toBe(expected);
        const ended = new Promise<number>((ok) => w.on('error', (e: ServiceError) => ok(e.code)));
        w.cancel();
        expect(await ended).toBe(status.CANCELLED);
      }
    } finally {
      h.close();
    }
  });
});
