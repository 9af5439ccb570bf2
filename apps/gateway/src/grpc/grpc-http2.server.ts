import { constants, createServer, type Http2Server, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { gunzip, inflate } from 'node:zlib';
import { status } from '@grpc/grpc-js';
import type { GrpcReply } from './grpc-status.map';
import { encodeGrpcMessage, framed, GrpcMessageReader, GrpcProtocolError, parseGrpcTimeout } from './grpc-message.reader';

export interface GrpcCall<Req> {
  readonly request: Req;
  readonly path: string;
  /** The client's address, written as Fastify writes `request.ip`. */
  readonly peer: string;
  /** When the client's deadline falls (epoch ms); undefined when it set none. */
  readonly deadline: number | undefined;
  readonly headers: IncomingHttpHeaders;
  /** The request message's bytes (`request` may hold views of them). */
  readonly message: Buffer;
  /** The method's `admitHead` decided on the message's first bytes. */
  readonly prechecked: boolean;
}

export interface GrpcServerStreamCall<Req, Res> extends GrpcCall<Req> {
  write(res: Res): void;
  /** Ends the stream: OK, or the given failure in its trailers. */
  end(reply?: GrpcReply): void;
  /** Runs once when the client goes away before end(). */
  onCancelled(fn: () => void): void;
}

interface MethodBase<Req, Res> {
  path: string;
  requestDeserialize(bytes: Buffer): Req;
  /** The response as a framed gRPC message (5-byte prefix, then the protobuf). */
  responseFrame(res: Res): Buffer;
  /** Where a request message of `len` bytes is assembled (see GrpcMessageReader); default: a fresh buffer. */
  allocate?: (len: number, head: Buffer) => Buffer;
  /** Checked on the request's headers, before any message byte is read (authentication). Throws to refuse. */
  guard?: (headers: IncomingHttpHeaders, peer: string) => void | Promise<void>;
  /**
   * Checked on the first DATA chunk (`head`: the 5-byte prefix and the message's first bytes),
   * after `guard` (admission). Throws to refuse: the rest of the upload is then not read. Returns
   * false when `head` did not tell (the handler decides); the call's `prechecked` says which.
   */
  /** `hold` gets the release of the place admission holds while the rest of the message arrives. */
  admitHead?: (head: Buffer, hold: (release: () => void) => void) => boolean | Promise<boolean>;
}
export type GrpcMethod<Req, Res> = MethodBase<Req, Res> &
  ({ unary: (call: GrpcCall<Req>) => Promise<Res> } | { serverStream: (call: GrpcServerStreamCall<Req, Res>) => void });

/** A serializer that returns a bare message, framed by copying (fine for small messages). */
export const frameWith =
  <Res>(serialize: (res: Res) => Buffer) =>
  (res: Res): Buffer =>
    framed(serialize(res));

export interface GrpcHttp2Options {
  maxMessageBytes: number;
  /** Maps a handler's thrown error (or rejection) to the status the client gets. */
  errorReply(e: unknown, path: string): GrpcReply;
}

const RESPONSE_HEADERS = { ':status': 200, 'content-type': 'application/grpc+proto', 'grpc-accept-encoding': 'identity,deflate,gzip' };
const OK_TRAILERS = { 'grpc-status': '0' };
const unzip = { gzip: promisify(gunzip), deflate: promisify(inflate) } as const;
/**
 * Flow-control windows: Node's default 64 KiB per stream makes a 110 KB image wait for a
 * WINDOW_UPDATE round trip mid-message (measured: ~30 % more server CPU per 256 KiB call).
 */
const STREAM_WINDOW = 1 << 20;
const SESSION_WINDOW = 16 << 20;

/**
 * gRPC (HTTP/2, protobuf, unary and server-streaming methods) on node:http2. grpc-js's server
 * costs ~40 µs of CPU per call and copies every message twice more than this (docs/benchmarks.md);
 * the protocol needed here is small: one length-prefixed message each way, `grpc-timeout`, and
 * the status in trailers (or trailers-only on errors).
 */
export class GrpcHttp2Server {
  private readonly server: Http2Server;
  private readonly methods = new Map<string, GrpcMethod<unknown, unknown>>();
  private readonly sessions = new Set<Http2Session>();
  /** Each connection's client address, read once (Fastify's `request.ip` is the same socket field). */
  private readonly peers = new WeakMap<Http2Session, string>();

  constructor(private readonly opts: GrpcHttp2Options) {
    this.server = createServer({ settings: { initialWindowSize: STREAM_WINDOW } });
    this.server.on('session', (session) => {
      this.sessions.add(session);
      this.peers.set(session, session.socket.remoteAddress ?? '');
      session.once('close', () => this.sessions.delete(session));
      session.on('error', () => undefined); // a peer's broken connection ends its session, nothing else
      session.setLocalWindowSize(SESSION_WINDOW);
    });
    this.server.on('stream', (stream, headers) => this.onStream(stream, headers));
  }

  add<Req, Res>(method: GrpcMethod<Req, Res>): void {
    this.methods.set(method.path, method as GrpcMethod<unknown, unknown>);
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((ok, fail) => {
      this.server.once('error', fail);
      this.server.listen(port, host, () => ok((this.server.address() as AddressInfo).port));
    });
  }

  /** Stops taking connections; open calls finish (GOAWAY), and are cut after `graceMs`. */
  async shutdown(graceMs: number): Promise<void> {
    const closed = new Promise<void>((done) => this.server.close(() => done()));
    for (const s of this.sessions) s.close();
    const timer = setTimeout(() => this.sessions.forEach((s) => s.destroy()), graceMs);
    await closed;
    clearTimeout(timer);
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', () => undefined); // reset by the client: nothing left to answer
    if (headers[':method'] !== 'POST' || !String(headers['content-type'] ?? '').startsWith('application/grpc')) {
      // Not gRPC at all: plain HTTP status, as the gRPC spec asks (415 for a wrong content-type).
      stream.respond({ ':status': headers[':method'] !== 'POST' ? 405 : 415 }, { endStream: true });
      return;
    }
    const path = headers[':path'] ?? '';
    const method = this.methods.get(path);
    if (!method) return this.fail(stream, { code: status.UNIMPLEMENTED, details: `the server does not implement the method ${path}` });
    const encoding = (headers['grpc-encoding'] as string | undefined) ?? 'identity';
    if (encoding !== 'identity' && !Object.hasOwn(unzip, encoding)) {
      return this.fail(stream, { code: status.UNIMPLEMENTED, details: `unsupported grpc-encoding '${encoding}'` });
    }
    let deadline: number | undefined;
    try {
      const ms = parseGrpcTimeout(headers['grpc-timeout'] as string | undefined);
      if (ms !== undefined) deadline = Date.now() + ms;
    } catch (e) {
      return this.fail(stream, e as GrpcProtocolError);
    }
    const peer = (stream.session && this.peers.get(stream.session)) ?? '';
    const reader = new GrpcMessageReader(this.opts.maxMessageBytes, method.allocate);
    let failed = false;
    let prechecked = false;
    const refuse = (reply: GrpcReply): void => {
      if (failed) return;
      failed = true;
      this.fail(stream, reply);
    };
    // Checks before the message is read, synchronous when they can be (REST's onRequest hooks).
    let gate: Promise<unknown> | undefined;
    const settle = (p: Promise<unknown>): void => {
      gate = p;
      p.catch((e: unknown) => refuse(this.opts.errorReply(e, path)));
    };
    const check = (fn: () => unknown): void => {
      if (failed) return;
      if (gate) return settle(gate.then(fn));
      try {
        const r = fn();
        if (r instanceof Promise) settle(r);
      } catch (e) {
        refuse(this.opts.errorReply(e, path));
      }
    };
    if (method.guard) check(() => method.guard!(headers, peer));
    let first = true;
    stream.on('data', (chunk: Buffer) => {
      if (first && method.admitHead) {
        const admit = method.admitHead;
        check(() => {
          const r = admit(chunk, (release) => {
            // Held until the message is read whole, or the call ends without it.
            stream.once('end', release);
            stream.once('close', release);
          });
          if (r instanceof Promise) return r.then((ok) => (prechecked = ok));
          prechecked = r;
        });
      }
      first = false;
      if (failed) return;
      try {
        reader.push(chunk);
      } catch (e) {
        refuse(e as GrpcProtocolError);
      }
    });
    stream.once('end', () => {
      if (failed) return;
      let message: { compressed: boolean; bytes: Buffer };
      try {
        message = reader.end();
      } catch (e) {
        return refuse(e as GrpcProtocolError);
      }
      const go = (): void => {
        if (!failed) void this.run(stream, method, { headers, path, peer, deadline, prechecked }, message.compressed ? encoding : 'identity', message.bytes);
      };
      if (gate) gate.then(go, () => undefined);
      else go();
    });
  }

  private async run(
    stream: ServerHttp2Stream,
    method: GrpcMethod<unknown, unknown>,
    at: { headers: IncomingHttpHeaders; path: string; peer: string; deadline: number | undefined; prechecked: boolean },
    encoding: string,
    bytes: Buffer,
  ): Promise<void> {
    const { path, deadline } = at;
    let request: unknown;
    try {
      if (encoding !== 'identity') {
        if (!Object.hasOwn(unzip, encoding)) throw new GrpcProtocolError(status.INTERNAL, 'a compressed message without grpc-encoding');
        bytes = await unzip[encoding as keyof typeof unzip](bytes, { maxOutputLength: this.opts.maxMessageBytes });
      }
      request = method.requestDeserialize(bytes);
    } catch (e) {
      const code = e instanceof GrpcProtocolError ? e.code : status.INVALID_ARGUMENT;
      return this.fail(stream, { code, details: e instanceof GrpcProtocolError ? e.message : `malformed request message: ${(e as Error).message}` });
    }
    const base = { ...at, request, message: bytes };
    // The deadline is the client's: past it, the client has given up and gets DEADLINE_EXCEEDED.
    const timer =
      deadline === undefined
        ? undefined
        : setTimeout(() => this.fail(stream, { code: status.DEADLINE_EXCEEDED, details: 'Deadline exceeded' }), Math.max(0, deadline - Date.now()));
    if ('serverStream' in method) {
      let started = false;
      const cancelled: (() => void)[] = [];
      stream.once('close', () => {
        if (timer) clearTimeout(timer);
        cancelled.forEach((fn) => fn());
      });
      method.serverStream({
        ...base,
        write: (res) => {
          if (stream.closed || stream.destroyed) return;
          if (!started) stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
          started = true;
          stream.write(method.responseFrame(res));
        },
        end: (reply) => {
          if (reply) return this.fail(stream, reply);
          if (stream.closed || stream.destroyed) return;
          if (!started) stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
          stream.once('wantTrailers', () => stream.sendTrailers(OK_TRAILERS));
          stream.end();
        },
        onCancelled: (fn) => cancelled.push(fn),
      });
      return;
    }
    try {
      const res = await method.unary(base);
      if (stream.closed || stream.destroyed || stream.headersSent) return;
      const out = method.responseFrame(res);
      stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers(OK_TRAILERS));
      stream.end(out);
    } catch (e) {
      this.fail(stream, this.opts.errorReply(e, path));
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  /**
   * Answers a failure: trailers-only before any response headers, else in the trailers after the
   * messages sent. A client still sending is reset (NO_ERROR) so its upload stops.
   */
  private fail(stream: ServerHttp2Stream, reply: GrpcReply): void {
    if (stream.closed || stream.destroyed || stream.writableEnded) return;
    const trailers = { ...reply.trailers, 'grpc-status': String(reply.code), 'grpc-message': encodeGrpcMessage(reply.details) };
    if (stream.headersSent) {
      stream.once('wantTrailers', () => stream.sendTrailers(trailers));
      stream.end();
      return;
    }
    stream.respond({ ...RESPONSE_HEADERS, ...trailers }, { endStream: true });
    if (!stream.readableEnded) stream.close(constants.NGHTTP2_NO_ERROR);
  }
}
