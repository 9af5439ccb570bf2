import { status } from '@grpc/grpc-js';

/** A gRPC protocol failure while reading a request: answered with this status, never thrown past the server. */
export class GrpcProtocolError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
  }

  get details(): string {
    return this.message;
  }
}

export interface GrpcMessage {
  compressed: boolean;
  bytes: Buffer;
}

/**
 * Reassembles one length-prefixed gRPC message (1 flag byte, 4 bytes big-endian length, body)
 * from HTTP/2 DATA chunks. The size limit is checked on the prefix, before the body arrives; the
 * body is copied once into a buffer of its announced size (or kept as a view when one chunk holds
 * it whole). A unary request carries exactly one message: a second is a protocol error.
 */
export class GrpcMessageReader {
  private readonly prefix = Buffer.alloc(5);
  private prefixHave = 0;
  private body?: Buffer;
  private bodyHave = 0;
  private done?: GrpcMessage;

  /**
   * @param allocate the buffer a message of `len` bytes is copied into, given the first of its
   *   bytes that arrived (`head`), so a method can place or pool it; default: a fresh buffer.
   */
  constructor(
    private readonly maxBytes: number,
    private readonly allocate: (len: number, head: Buffer) => Buffer = (len) => Buffer.allocUnsafeSlow(len),
  ) {}

  /** Feeds one chunk; throws GrpcProtocolError on a limit or framing violation. */
  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.done) throw new GrpcProtocolError(status.UNIMPLEMENTED, 'more than one request message for a unary method');
      if (this.prefixHave < 5) {
        const n = Math.min(5 - this.prefixHave, chunk.length - at);
        chunk.copy(this.prefix, this.prefixHave, at, at + n);
        this.prefixHave += n;
        at += n;
        if (this.prefixHave < 5) return;
        const len = this.prefix.readUInt32BE(1);
        if (len > this.maxBytes) {
          throw new GrpcProtocolError(status.RESOURCE_EXHAUSTED, `Received message larger than max (${len} vs. ${this.maxBytes})`);
        }
        if (chunk.length - at >= len) {
          // The whole message is in this chunk: a view, no copy.
          this.finish(chunk.subarray(at, at + len));
          at += len;
          continue;
        }
        this.body = this.allocate(len, chunk.subarray(at));
        this.bodyHave = 0;
        if (len === 0) this.finish(this.body);
        continue;
      }
      const body = this.body!;
      const n = Math.min(body.length - this.bodyHave, chunk.length - at);
      chunk.copy(body, this.bodyHave, at, at + n);
      this.bodyHave += n;
      at += n;
      if (this.bodyHave === body.length) this.finish(body);
    }
  }

  /** The message once the request's stream ended; throws when there was none or it was cut short. */
  end(): GrpcMessage {
    if (this.done) return this.done;
    if (this.prefixHave === 0) throw new GrpcProtocolError(status.UNIMPLEMENTED, 'no request message for a unary method');
    throw new GrpcProtocolError(status.INTERNAL, 'the request stream ended inside a message');
  }

  private finish(bytes: Buffer): void {
    this.done = { compressed: this.prefix[0] === 1, bytes };
    this.body = undefined;
  }
}

/** A message with its 5-byte gRPC prefix, for serializers that did not leave room for it. */
export function framed(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}

/** Writes the prefix into the 5 free bytes a serializer left at the front of `buf`. */
export function framePrefixed(buf: Buffer): Buffer {
  buf[0] = 0;
  buf.writeUInt32BE(buf.length - 5, 1);
  return buf;
}

const TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/** `grpc-timeout` (1–8 digits and a unit) in milliseconds; undefined when absent; throws when malformed. */
export function parseGrpcTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!m) throw new GrpcProtocolError(status.OUT_OF_RANGE, `invalid grpc-timeout '${value}'`);
  return Number(m[1]) * TIMEOUT_UNIT_MS[m[2]!]!;
}

/** `grpc-message` is percent-encoded: '%' and every byte outside printable ASCII. */
export function encodeGrpcMessage(details: string): string {
  return /^[\x20-\x24\x26-\x7e]*$/.test(details)
    ? details
    : Array.from(Buffer.from(details, 'utf8'), (b) =>
        b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
      ).join('');
}
