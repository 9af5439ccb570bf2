import { createHash, randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DomainException, ErrorCode } from '@tandem/shared';
import { assertBlobKey, resolveRange, type BlobInfo, type BlobStore, type ByteRange } from './blob-store';

const errno = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | null)?.code;

/**
 * Blobs as files under one directory (one node: nothing else reaches this disk). A put writes
 * `tmp/<key>.<random>.part`, fsyncs it and hard-links it to `objects/<xx>/<key>`: the link is
 * atomic and fails if the key exists, so a reader sees the whole file or nothing, and a key is
 * never overwritten. A crash leaves only a `.part` file, which `sweepPartials` removes.
 */
export class DiskBlobStore implements BlobStore {
  readonly kind = 'disk' as const;
  private ready?: Promise<void>;

  constructor(private readonly dir: string) {}

  async put(key: string, data: AsyncIterable<Uint8Array>): Promise<BlobInfo> {
    assertBlobKey(key);
    await this.dirs();
    const tmp = join(this.dir, 'tmp', `${key}.${randomBytes(6).toString('hex')}.part`);
    const final = this.path(key);
    const hash = createHash('sha256');
    let size = 0;
    const fh = await open(tmp, 'wx', 0o600);
    try {
      try {
        for await (const chunk of data) {
          hash.update(chunk);
          size += chunk.byteLength;
          // Awaiting each write is the backpressure: the source is read no faster than the disk takes it.
          await fh.write(chunk);
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      await mkdir(join(final, '..'), { recursive: true });
      await link(tmp, final).catch((e: unknown) => {
        if (errno(e) === 'EEXIST') throw new DomainException(ErrorCode.Conflict, `blob ${key} already exists`);
        throw e;
      });
      await syncDir(join(final, '..'));
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    return { key, size, sha256: hash.digest('hex') };
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const size = await this.size(key);
    if (size === null) throw DomainException.notFound(`blob ${key} not found`);
    const { start, end } = resolveRange(size, range);
    if (end <= start) return Readable.from([]);
    // Opened now (not lazily) so a blob deleted in between is a NotFound here, not a stream error.
    const fh = await open(this.path(key), 'r').catch((e: unknown) => {
      if (errno(e) === 'ENOENT') throw DomainException.notFound(`blob ${key} not found`);
      throw e;
    });
    return fh.createReadStream({ start, end: end - 1, highWaterMark: 256 * 1024 });
  }

  async size(key: string): Promise<number | null> {
    assertBlobKey(key);
    try {
      return (await stat(this.path(key))).size;
    } catch (e) {
      if (errno(e) === 'ENOENT') return null;
      throw e;
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.size(key)) !== null;
  }

  async delete(key: string): Promise<boolean> {
    assertBlobKey(key);
    try {
      await unlink(this.path(key));
      return true;
    } catch (e) {
      if (errno(e) === 'ENOENT') return false;
      throw e;
    }
  }

  async sweepPartials(olderThanMs: number): Promise<number> {
    const tmpDir = join(this.dir, 'tmp');
    const names = await readdir(tmpDir).catch((e: unknown) => (errno(e) === 'ENOENT' ? [] : Promise.reject(e)));
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    for (const name of names) {
      if (!name.endsWith('.part')) continue;
      const p = join(tmpDir, name);
      const st = await stat(p).catch(() => null);
      if (
        st &&
        st.mtimeMs < cutoff &&
        (await unlink(p).then(
          () => true,
          () => false,
        ))
      )
        removed++;
    }
    return removed;
  }

  /** objects/<last two chars>/<key>: keys are random, so this spreads them over 4096 directories at most. */
  private path(key: string): string {
    return join(this.dir, 'objects', key.slice(-2), key);
  }

  private dirs(): Promise<void> {
    this.ready ??= Promise.all([mkdir(join(this.dir, 'tmp'), { recursive: true }), mkdir(join(this.dir, 'objects'), { recursive: true })]).then(
      () => undefined,
      (e: unknown) => {
        this.ready = undefined;
        throw e;
      },
    );
    return this.ready;
  }
}

/** The new directory entry survives a power loss only once its directory is synced too. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
