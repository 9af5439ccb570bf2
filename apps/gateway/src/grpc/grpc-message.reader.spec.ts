import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { encodeGrpcMessage, framed, GrpcMessageReader, GrpcProtocolError, parseGrpcTimeout } from './grpc-message.reader';

const codeOf = (f: () => unknown): status | undefined => {
  try {
    f();
    return undefined;
  } catch (e) {
    return (e as GrpcProtocolError).code;
  }
};

describe('GrpcMessageReader', () => {
  const msg = Buffer.from(Array.from({ length: 300 }, (_, i) => i % 251));

  it('reassembles a message fed one byte at a time, and keeps a view when one chunk holds it whole', () => {
    const bytes = framed(msg);
    const slow = new GrpcMessageReader(1000);
    for (let i = 0; i < bytes.length; i++) slow.push(bytes.subarray(i, i + 1));
    expect(slow.end()).toEqual({ compressed: false, bytes: msg });
    const whole = new GrpcMessageReader(1000);
    whole.push(bytes);
    const got = whole.end().bytes;
    expect(got.buffer).toBe(bytes.buffer);
    expect(got).toEqual(msg);
  });

  it('refuses on the prefix past the limit, before any body byte; the compressed flag is kept', () => {
    const r = new GrpcMessageReader(299);
    expect(codeOf(() => r.push(framed(msg).subarray(0, 5)))).toBe(status.RESOURCE_EXHAUSTED);
    const c = new GrpcMessageReader(1000);
    const bytes = framed(msg);
    bytes[0] = 1;
    c.push(bytes);
    expect(c.end().compressed).toBe(true);
  });

  it('an empty message is one message; none, two, or one cut short are protocol errors', () => {
    const empty = new GrpcMessageReader(10);
    empty.push(framed(Buffer.alloc(0)));
    expect(empty.end().bytes.length).toBe(0);
    expect(codeOf(() => new GrpcMessageReader(10).end())).toBe(status.UNIMPLEMENTED);
    expect(codeOf(() => new GrpcMessageReader(1000).push(Buffer.concat([framed(msg), framed(msg)])))).toBe(status.UNIMPLEMENTED);
    const cut = new GrpcMessageReader(1000);
    cut.push(framed(msg).subarray(0, 100));
    expect(codeOf(() => cut.end())).toBe(status.INTERNAL);
  });
});

describe('grpc-timeout and grpc-message', () => {
  it('parses every unit, refuses malformed values', () => {
    expect(parseGrpcTimeout(undefined)).toBeUndefined();
    expect([parseGrpcTimeout('2H'), parseGrpcTimeout('3M'), parseGrpcTimeout('4S'), parseGrpcTimeout('5m')]).toEqual([7_200_000, 180_000, 4000, 5]);
    expect(parseGrpcTimeout('7000u')).toBeCloseTo(7, 9);
    expect(parseGrpcTimeout('9000000n')).toBeCloseTo(9, 9);
    for (const bad of ['', '5', 'm', '123456789S', '1.5S', '-1S'])
      expect(
        codeOf(() => parseGrpcTimeout(bad)),
        bad,
      ).toBe(status.OUT_OF_RANGE);
  });

  it('percent-encodes % and bytes outside printable ASCII, leaves the rest', () => {
    expect(encodeGrpcMessage("model 'x' not found")).toBe("model 'x' not found");
    expect(encodeGrpcMessage('100% é\n')).toBe('100%25 %C3%A9%0A');
    expect(decodeURIComponent(encodeGrpcMessage('100% é\n'))).toBe('100% é\n');
  });
});
