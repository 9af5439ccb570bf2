import type { InferTensorContentsWire, Long, ModelInferResponseWire } from './grpc-wire.types';

/**
 * ModelInferResponse written by hand (see grpc-infer.decode.ts for why): sized once, every
 * field written into one buffer, raw_output_contents copied straight from the output tensors.
 */
const varintSize = (n: number): number =>
  n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : n < 2 ** 35 ? 5 : Math.ceil(Math.log2(n + 1) / 7);
/** An int64 as its unsigned 64-bit varint value (negative: two's complement, 10 bytes). */
const int64Bits = (v: Long | bigint): bigint => BigInt.asUintN(64, BigInt(v));
const bigSize = (v: bigint): number => {
  let n = 1;
  while (v >= 0x80n) {
    v >>= 7n;
    n++;
  }
  return n;
};

class Writer {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  varint(n: number): void {
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
  }
  big(v: bigint): void {
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }
  tag(field: number, wire: number): void {
    this.buf[this.pos++] = (field << 3) | wire;
  }
  bytes(field: number, b: Uint8Array): void {
    this.tag(field, 2);
    this.varint(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  string(field: number, s: string): void {
    if (s === '') return;
    const len = Buffer.byteLength(s);
    this.tag(field, 2);
    this.varint(len);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }
}

/** One packed repeated field's payload: its size and how to write it. */
interface Packed {
  field: number;
  size: number;
  write(w: Writer): void;
}

function packedField(field: number, values: readonly (number | boolean | Long)[]): Packed | undefined {
  if (values.length === 0) return undefined;
  if (field === 6 || field === 7) {
    const width = field === 6 ? 4 : 8;
    return {
      field,
      size: values.length * width,
      write: (w) => {
        for (const v of values) w.pos = width === 4 ? w.buf.writeFloatLE(v as number, w.pos) : w.buf.writeDoubleLE(v as number, w.pos);
      },
    };
  }
  const bits = values.map((v) => (typeof v === 'boolean' ? (v ? 1n : 0n) : int64Bits(v)));
  return { field, size: bits.reduce((s, b) => s + bigSize(b), 0), write: (w) => bits.forEach((b) => w.big(b)) };
}

const CONTENT_FIELDS: [keyof InferTensorContentsWire, number][] = [
  ['bool_contents', 1],
  ['int_contents', 2],
  ['int64_contents', 3],
  ['uint_contents', 4],
  ['uint64_contents', 5],
  ['fp32_contents', 6],
  ['fp64_contents', 7],
];

/**
 * ModelInfer's response serializer: sized once, written into one fresh buffer after `headroom`
 * free bytes (the gRPC server writes its 5-byte message prefix there, so the framed message is
 * never copied again). Fresh, not reused: HTTP/2 holds the buffer until the frames are sent.
 */
export function encodeModelInferResponse(res: ModelInferResponseWire, headroom = 0): Buffer {
  const str = (field: number, s: string): number => (s === '' ? 0 : 1 + varintSize(Buffer.byteLength(s)) + Buffer.byteLength(s));
  const lenField = (n: number): number => 1 + varintSize(n) + n;
  const outs = res.outputs.map((o) => {
    const shape = o.shape.map((d) => int64Bits(d));
    const shapeSize = shape.reduce((s, b) => s + bigSize(b), 0);
    let packed: Packed[] = [];
    let bytesEls: Uint8Array[] = [];
    let contentsSize = -1;
    if (o.contents) {
      packed = CONTENT_FIELDS.map(([k, f]) => packedField(f, (o.contents![k] ?? []) as (number | boolean | Long)[])).filter(
        (p): p is Packed => p !== undefined,
      );
      bytesEls = o.contents.bytes_contents ?? [];
      contentsSize = packed.reduce((s, p) => s + lenField(p.size), 0) + bytesEls.reduce((s, b) => s + lenField(b.length), 0);
    }
    const size = str(1, o.name) + str(2, o.datatype) + (shape.length ? lenField(shapeSize) : 0) + (contentsSize >= 0 ? lenField(contentsSize) : 0);
    return { o, shape, shapeSize, packed, bytesEls, contentsSize, size };
  });
  const total =
    str(1, res.model_name) +
    str(2, res.model_version) +
    str(3, res.id) +
    outs.reduce((s, x) => s + lenField(x.size), 0) +
    res.raw_output_contents.reduce((s, b) => s + lenField(b.length), 0);
  const w = new Writer(Buffer.allocUnsafe(headroom + total));
  w.pos = headroom;
  w.string(1, res.model_name);
  w.string(2, res.model_version);
  w.string(3, res.id);
  for (const x of outs) {
    w.tag(5, 2);
    w.varint(x.size);
    w.string(1, x.o.name);
    w.string(2, x.o.datatype);
    if (x.shape.length) {
      w.tag(3, 2);
      w.varint(x.shapeSize);
      for (const b of x.shape) w.big(b);
    }
    if (x.contentsSize >= 0) {
      w.tag(5, 2);
      w.varint(x.contentsSize);
      for (const p of x.packed) {
        w.tag(p.field, 2);
        w.varint(p.size);
        p.write(w);
      }
      for (const b of x.bytesEls) w.bytes(8, b);
    }
  }
  for (const b of res.raw_output_contents) w.bytes(6, b);
  if (w.pos !== headroom + total) throw new Error(`ModelInferResponse encoder wrote ${w.pos - headroom} of ${total} bytes`);
  return w.buf;
}
