import { DomainException } from '@tandem/shared';
import type { InferInputTensorWire, InferParameterWire, InferTensorContentsWire, Long, ModelInferRequestWire } from './grpc-wire.types';

/**
 * ModelInfer's protobuf, read and written by hand (grpc_service.proto, field numbers below; the response: grpc-infer.encode.ts).
 * proto-loader's generic path builds a message object, then converts it field by field
 * (toObject/fromObject) and copies every `bytes` field; here `raw_input_contents` and
 * `bytes_contents` stay views of the received message and the response is sized once and
 * written into one buffer. Output matches proto-loader's options (keepCase, longs as strings
 * past 2^53, defaults on, oneofs named).
 */

const bad = (msg: string): DomainException => DomainException.invalid(`malformed ModelInferRequest: ${msg}`);

class Reader {
  pos = 0;
  constructor(
    readonly buf: Buffer,
    readonly end = buf.length,
  ) {}

  varint(): number {
    let x = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) throw bad('truncated varint');
      const b = this.buf[this.pos++]!;
      if (shift < 49) x += (b & 0x7f) * 2 ** shift;
      else if (b & 0x7f) return this.bigFallback();
      if ((b & 0x80) === 0) return x;
      shift += 7;
      if (shift > 63) throw bad('varint too long');
    }
  }

  /** A varint past 2^49: re-read it exactly (int64 written two's complement in 10 bytes). */
  private bigFallback(): never {
    throw new BigVarint();
  }

  /** int64/uint64 as proto-loader gives them with longs: String (a number when exact). */
  long(signed: boolean): Long {
    const start = this.pos;
    try {
      return this.varint();
    } catch (e) {
      if (!(e instanceof BigVarint)) throw e;
      this.pos = start;
      let v = 0n;
      let shift = 0n;
      for (;;) {
        if (this.pos >= this.end) throw bad('truncated varint');
        const b = this.buf[this.pos++]!;
        v |= BigInt(b & 0x7f) << shift;
        if ((b & 0x80) === 0) break;
        shift += 7n;
      }
      const n = signed ? BigInt.asIntN(64, v) : BigInt.asUintN(64, v);
      return Number.isSafeInteger(Number(n)) ? Number(n) : n.toString();
    }
  }

  bytes(): Buffer {
    const len = this.varint();
    if (this.pos + len > this.end) throw bad('length-delimited field runs past its message');
    const b = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return b;
  }

  string(): string {
    const len = this.varint();
    if (this.pos + len > this.end) throw bad('string runs past its message');
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }

  sub(): Reader {
    const len = this.varint();
    if (this.pos + len > this.end) throw bad('sub-message runs past its message');
    const r = new Reader(this.buf, this.pos + len);
    r.pos = this.pos;
    this.pos += len;
    return r;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.pos += this.varint();
    else if (wire === 5) this.pos += 4;
    else throw bad(`unsupported wire type ${wire}`);
    if (this.pos > this.end) throw bad('field runs past its message');
  }

  /** A repeated scalar, packed or not. */
  repeated<T>(wire: number, scalarWire: number, one: (r: Reader) => T, out: T[]): void {
    if (wire === 2 && scalarWire !== 2) {
      const r = this.sub();
      while (r.pos < r.end) out.push(one(r));
    } else if (wire === scalarWire) out.push(one(this));
    else throw bad(`wire type ${wire} for a repeated field of wire type ${scalarWire}`);
  }
}

class BigVarint extends Error {}

const int32 = (r: Reader): number => {
  const v = r.long(true);
  return Number(v) | 0;
};
const fp32 = (r: Reader): number => {
  if (r.pos + 4 > r.end) throw bad('truncated float');
  const v = r.buf.readFloatLE(r.pos);
  r.pos += 4;
  return v;
};
const fp64 = (r: Reader): number => {
  if (r.pos + 8 > r.end) throw bad('truncated double');
  const v = r.buf.readDoubleLE(r.pos);
  r.pos += 8;
  return v;
};

function parameter(r: Reader): InferParameterWire {
  const p: InferParameterWire = {};
  while (r.pos < r.end) {
    const tag = r.varint();
    const f = tag >>> 3;
    if (f === 1) [p.bool_param, p.parameter_choice] = [r.varint() !== 0, 'bool_param'];
    else if (f === 2) [p.int64_param, p.parameter_choice] = [String(r.long(true)), 'int64_param'];
    else if (f === 3) [p.string_param, p.parameter_choice] = [r.string(), 'string_param'];
    else r.skip(tag & 7);
  }
  return p;
}

function mapEntry(r: Reader, into: Record<string, InferParameterWire>): void {
  let key = '';
  let value: InferParameterWire = {};
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag >>> 3 === 1) key = r.string();
    else if (tag >>> 3 === 2) value = parameter(r.sub());
    else r.skip(tag & 7);
  }
  into[key] = value;
}

function contents(r: Reader): InferTensorContentsWire {
  const c: Required<InferTensorContentsWire> = {
    bool_contents: [],
    int_contents: [],
    int64_contents: [],
    uint_contents: [],
    uint64_contents: [],
    fp32_contents: [],
    fp64_contents: [],
    bytes_contents: [],
  };
  while (r.pos < r.end) {
    const tag = r.varint();
    const w = tag & 7;
    switch (tag >>> 3) {
      case 1:
        r.repeated(w, 0, (x) => x.varint() !== 0, c.bool_contents);
        break;
      case 2:
        r.repeated(w, 0, int32, c.int_contents);
        break;
      case 3:
        r.repeated(w, 0, (x) => x.long(true), c.int64_contents);
        break;
      case 4:
        r.repeated(w, 0, (x) => Number(x.long(false)) >>> 0, c.uint_contents);
        break;
      case 5:
        r.repeated(w, 0, (x) => x.long(false), c.uint64_contents);
        break;
      case 6:
        r.repeated(w, 5, fp32, c.fp32_contents);
        break;
      case 7:
        r.repeated(w, 1, fp64, c.fp64_contents);
        break;
      case 8:
        if (w !== 2) throw bad('bytes_contents wire type');
        c.bytes_contents.push(r.bytes());
        break;
      default:
        r.skip(w);
    }
  }
  return c;
}

function inputTensor(r: Reader): InferInputTensorWire {
  const t: InferInputTensorWire = { name: '', datatype: '', shape: [], parameters: {}, contents: null };
  while (r.pos < r.end) {
    const tag = r.varint();
    const w = tag & 7;
    if (tag >>> 3 <= 5 && tag >>> 3 !== 3 && w !== 2) throw bad(`inputs field ${tag >>> 3} has wire type ${w}`);
    switch (tag >>> 3) {
      case 1:
        t.name = r.string();
        break;
      case 2:
        t.datatype = r.string();
        break;
      case 3:
        r.repeated(w, 0, (x) => x.long(true), t.shape);
        break;
      case 4:
        mapEntry(r.sub(), t.parameters!);
        break;
      case 5:
        t.contents = contents(r.sub());
        break;
      default:
        r.skip(w);
    }
  }
  return t;
}

function requestedOutput(r: Reader): { name: string; parameters: Record<string, InferParameterWire> } {
  const o = { name: '', parameters: {} as Record<string, InferParameterWire> };
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag >>> 3 === 1) o.name = r.string();
    else if (tag >>> 3 === 2) mapEntry(r.sub(), o.parameters);
    else r.skip(tag & 7);
  }
  return o;
}

/**
 * ModelInfer's request deserializer. A malformed message is not thrown: it comes back marked,
 * and the handler answers INVALID_ARGUMENT after authentication (the same order as REST).
 */
export function decodeModelInferRequest(buf: Buffer): ModelInferRequestWire {
  try {
    return decode(buf);
  } catch (e) {
    const message = e instanceof DomainException ? e.message : 'malformed ModelInferRequest';
    return { model_name: '', model_version: '', id: '', parameters: {}, inputs: [], outputs: [], raw_input_contents: [], malformed: message };
  }
}

function decode(buf: Buffer): ModelInferRequestWire {
  const req: ModelInferRequestWire = { model_name: '', model_version: '', id: '', parameters: {}, inputs: [], outputs: [], raw_input_contents: [] };
  const r = new Reader(buf);
  while (r.pos < r.end) {
    const tag = r.varint();
    const w = tag & 7;
    // Every field of ModelInferRequest is length-delimited.
    if (tag >>> 3 <= 7 && w !== 2) throw bad(`field ${tag >>> 3} has wire type ${w}`);
    switch (tag >>> 3) {
      case 1:
        req.model_name = r.string();
        break;
      case 2:
        req.model_version = r.string();
        break;
      case 3:
        req.id = r.string();
        break;
      case 4:
        mapEntry(r.sub(), req.parameters!);
        break;
      case 5:
        req.inputs.push(inputTensor(r.sub()));
        break;
      case 6:
        req.outputs.push(requestedOutput(r.sub()));
        break;
      case 7:
        if (w !== 2) throw bad('raw_input_contents wire type');
        req.raw_input_contents.push(r.bytes());
        break;
      default:
        r.skip(w);
    }
  }
  return req;
}

/**
 * Where the first `raw_input_contents` element's bytes start in a ModelInferRequest, read from
 * its first bytes only (`head`); -1 when they do not reach it. The server uses it to place the
 * message so those bytes land 8-byte aligned: tensors are then views, not copies
 * (`tensorDataFromBinary` copies misaligned data).
 */
export function rawContentsOffset(head: Buffer): number {
  const r = new Reader(head);
  try {
    while (r.pos < r.end) {
      const tag = r.varint();
      const wire = tag & 7;
      if (wire === 2) {
        const len = r.varint();
        if (tag >>> 3 === 7) return r.pos;
        r.pos += len;
      } else if (wire === 0) r.varint();
      else if (wire === 1) r.pos += 8;
      else if (wire === 5) r.pos += 4;
      else return -1;
    }
  } catch {
    // A varint cut by the end of `head` (or malformed: the full decode reports it).
  }
  return -1;
}

/**
 * model_name and model_version from a ModelInferRequest's first bytes (`head`, the message
 * without its gRPC prefix; `whole`: all of it), for admission before the rest arrives; undefined when `head` does not
 * settle them (a serializer writes fields in number order, so both normally lead the message).
 */
export function modelOfHead(head: Buffer, whole: boolean): { model: string; version: string } | undefined {
  const r = new Reader(head);
  const out = { model: '', version: '' };
  try {
    for (let field = 1; field <= 2;) {
      if (r.pos >= r.end) {
        if (whole) break;
        return undefined; // the next field could still be model_name or model_version
      }
      const tag = r.varint();
      const f = tag >>> 3;
      if (f > 2) break;
      if (f < field || (tag & 7) !== 2) return undefined;
      const s = r.string();
      if (f === 1) out.model = s;
      else out.version = s;
      field = f + 1;
    }
  } catch {
    return undefined; // cut by the end of `head`, or malformed: the full decode reports it
  }
  return out.model ? out : undefined;
}
