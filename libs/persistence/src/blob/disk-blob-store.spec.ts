import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { DomainException, ErrorCode } from '@tandem/shared';
import { blobStoreContract, newKey, pieces } from './blob-store.contract';
import { DiskBlobStore } from './disk-blob-store';

describe('DiskBlobStore', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-blobs-'));
  const store = new DiskBlobStore(dir);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  blobStoreContract(() => store);

  it('a failed put leaves no .part file and no object', async () => {
    const key = newKey();
    async function* failing(): AsyncGenerator<Buffer> {
      yield randomBytes(100_000);
      throw new DomainException(ErrorCode.InvalidArgument, 'line 3: not a JSON object');
    }
    await expect(store.put(key, failing())).rejects.toThrow('line 3');
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
    expect(await store.exists(key)).toBe(false);
  });

  it('sweepPartials removes only old leftovers of interrupted puts', async () => {
    const old = join(dir, 'tmp', 'kdead.abc.part');
    const fresh = join(dir, 'tmp', 'kalive.abc.part');
    writeFileSync(old, 'x');
    writeFileSync(fresh, 'y');
    const past = new Date(Date.now() - 2 * 3600_000);
    utimesSync(old, past, past);
    expect(await store.sweepPartials(3600_000)).toBe(1);
    expect(readdirSync(join(dir, 'tmp'))).toEqual(['kalive.abc.part']);
    rmSync(fresh);
  });

  it('creates its directory lazily, at the first put', async () => {
    const lazy = join(dir, 'not-yet', 'blobs');
    const s = new DiskBlobStore(lazy);
    expect(await s.exists('kabc')).toBe(false);
    await s.put('kabc', pieces(Buffer.from('hello')));
    expect(await s.size('kabc')).toBe(5);
  });
});
