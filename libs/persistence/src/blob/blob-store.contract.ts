import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { expect, it } from 'vitest';
import { DomainException, ErrorCode } from '@tandem/shared';
import type { BlobStore } from './blob-store';

/** Collects a stream (test-only: blobs here are a few MiB). */
export async function bytesOf(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** `total` bytes in pieces of `piece`, the way a socket delivers them. */
export async function* pieces(buf: Buffer, piece = 64 * 1024): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += piece) yield buf.subarray(i, i + piece);
}

export const newKey = (): string => `k${randomBytes(8).toString('hex')}`;

const codeOf = (p: Promise<unknown>): Promise<ErrorCode | string> =>
  p.then(
    () => 'resolved',
    (e: unknown) => (e instanceof DomainException ? e.code : String(e)),
  );

/** The behaviour every BlobStore promises; each implementation's spec runs it. */
export function blobStoreContract(store: () => BlobStore): void {
  it('put streams in and returns size and sha256; get streams back byte-identical (3 MiB)', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const key = newKey();
    const info = await store().put(key, pieces(data));
    expect(info).toEqual({ key, size: data.length, sha256: createHash('sha256').update(data).digest('hex') });
    expect((await bytesOf(await store().get(key))).equals(data)).toBe(true);
    expect(await store().size(key)).toBe(data.length);
    expect(await store().exists(key)).toBe(true);
  });

  it('byte ranges: [start, end) within, across chunk boundaries, clamped at the end, empty', async () => {
    const data = randomBytes(1024 * 1024 + 4321);
    const key = newKey();
    await store().put(key, pieces(data, 10_000));
    for (const [start, end] of [
      [0, 10],
      [5, 5],
      [524_287, 524_289],
      [1000, 1024 * 1024 + 100],
      [data.length - 3, undefined],
      [data.length - 3, data.length + 1000],
      [data.length + 5, undefined],
    ] as [number, number | undefined][]) {
      const got = await bytesOf(await store().get(key, { start, end }));
      expect(got.equals(data.subarray(start, end)), `[${start}, ${end})`).toBe(true);
    }
    await expect(codeOf(store().get(key, { start: 10, end: 5 }))).resolves.toBe(ErrorCode.InvalidArgument);
    await expect(codeOf(store().get(key, { start: -1 }))).resolves.toBe(ErrorCode.InvalidArgument);
  });

  it('an empty blob', async () => {
    const key = newKey();
    expect((await store().put(key, pieces(Buffer.alloc(0)))).size).toBe(0);
    expect((await bytesOf(await store().get(key))).length).toBe(0);
  });

  it('a source that throws mid-way leaves nothing under the key, and the key stays usable', async () => {
    const key = newKey();
    async function* failing(): AsyncGenerator<Buffer> {
      yield randomBytes(2 * 1024 * 1024);
      throw new DomainException(ErrorCode.PayloadTooLarge, 'over the limit');
    }
    await expect(codeOf(store().put(key, failing()))).resolves.toBe(ErrorCode.PayloadTooLarge);
    expect(await store().exists(key)).toBe(false);
    await expect(codeOf(store().get(key))).resolves.toBe(ErrorCode.NotFound);
    await store().put(key, pieces(Buffer.from('again')));
    expect((await bytesOf(await store().get(key))).toString()).toBe('again');
  });

  it('no reader sees a put before it completes', async () => {
    const key = newKey();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    async function* slow(): AsyncGenerator<Buffer> {
      yield Buffer.from('first half,');
      await gate;
      yield Buffer.from('second half');
    }
    const put = store().put(key, slow());
    await new Promise((r) => setTimeout(r, 100));
    expect(await store().exists(key)).toBe(false);
    release();
    await put;
    expect((await bytesOf(await store().get(key))).toString()).toBe('first half,second half');
  });

  it('an existing key is a Conflict and keeps its bytes; delete is idempotent', async () => {
    const key = newKey();
    await store().put(key, pieces(Buffer.from('one')));
    await expect(codeOf(store().put(key, pieces(Buffer.from('two'))))).resolves.toBe(ErrorCode.Conflict);
    expect((await bytesOf(await store().get(key))).toString()).toBe('one');
    expect(await store().delete(key)).toBe(true);
    expect(await store().delete(key)).toBe(false);
    expect(await store().size(key)).toBeNull();
    await expect(codeOf(store().get(key))).resolves.toBe(ErrorCode.NotFound);
  });

  it('keys that could name another path are refused', async () => {
    for (const key of ['../x', 'a/b', '.hidden', '', 'x'.repeat(200)]) {
      await expect(codeOf(store().put(key, pieces(Buffer.from('x'))))).resolves.toBe(ErrorCode.InvalidArgument);
      await expect(codeOf(store().get(key))).resolves.toBe(ErrorCode.InvalidArgument);
    }
  });
}
