import { connect, type ClientHttp2Session } from 'node:http2';
import { resolve } from 'node:path';
import { loadSync, type MethodDefinition } from '@grpc/proto-loader';
import { closedLoopOf, type LoadResult } from './http-load';

/**
 * A minimal gRPC load client on node:http2 (like ghz, or the raw-socket HTTP/1.1 client beside
 * it): the ModelInfer request is serialized and framed once and sent as-is; the answer is read
 * only for its `grpc-status`. grpc-js's client spends more CPU per 110 KB call than the server
 * it measures (serializing and framing each message), on the same two cores.
 */
const CLS_ITEM = 3 * 48 * 192;
const PATH = '/inference.GRPCInferenceService/ModelInfer';

/** ppocr_cls, one image of raw contents, framed as one gRPC message. */
export function clsInferMessage(protoDir: string): Buffer {
  return inferMessage(protoDir, 'ppocr_cls', [1, 3, 48, 192], new Float32Array(CLS_ITEM).fill(0.3));
}

/** A ModelInfer request of one FP32 input `x` in raw contents, framed as one gRPC message. */
export function inferMessage(protoDir: string, model: string, shape: number[], x: Float32Array): Buffer {
  const defs = loadSync(resolve(protoDir, 'grpc_service.proto'), { keepCase: true, longs: String, defaults: true, oneofs: true });
  const def = (defs['inference.GRPCInferenceService'] as Record<string, MethodDefinition<object, unknown>>).ModelInfer!;
  const msg = def.requestSerialize({
    model_name: model,
    inputs: [{ name: 'x', datatype: 'FP32', shape }],
    raw_input_contents: [Buffer.from(x.buffer, x.byteOffset, x.byteLength)],
  });
  const out = Buffer.alloc(5 + msg.length);
  out.writeUInt32BE(msg.length, 1);
  msg.copy(out, 5);
  return out;
}

function call(session: ClientHttp2Session, headers: Record<string, string>, body: Buffer): Promise<boolean> {
  return new Promise((done) => {
    const req = session.request(headers);
    let grpcStatus: string | undefined;
    req.on('response', (h) => (grpcStatus = h['grpc-status'] as string | undefined)); // trailers-only: an error
    req.on('trailers', (t) => (grpcStatus = t['grpc-status'] as string | undefined));
    req.on('data', () => undefined);
    req.on('error', () => done(false));
    req.on('close', () => done(grpcStatus === '0'));
    req.end(body);
  });
}

/** Closed loop of ModelInfer at `concurrency`, over `channels` HTTP/2 connections. */
export async function grpcRawClosedLoop(addr: string, message: Buffer, concurrency: number, seconds: number, key?: string, channels = 8): Promise<LoadResult> {
  const sessions = Array.from({ length: Math.min(channels, concurrency) }, () => {
    const s = connect(`http://${addr}`, { settings: { initialWindowSize: 1 << 20 } });
    s.on('connect', () => s.setLocalWindowSize(16 << 20));
    s.on('error', () => undefined);
    return s;
  });
  const headers: Record<string, string> = { ':method': 'POST', ':path': PATH, 'content-type': 'application/grpc', te: 'trailers' };
  if (key) headers.authorization = `Bearer ${key}`;
  const r = await closedLoopOf(concurrency, seconds, (i) => call(sessions[i % sessions.length]!, headers, message));
  for (const s of sessions) s.close();
  return r;
}
