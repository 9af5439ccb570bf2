import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { chooseAllocator, DEFAULT_GLIBC_TUNABLES, findJemalloc } from './allocator-env';

const LIB = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2';

describe('launcher allocator choice', () => {
  it('defaults to glibc with a fixed mmap threshold, jemalloc or not', () => {
    expect(chooseAllocator('glibc', {}, LIB)).toEqual({
      env: { GLIBC_TUNABLES: DEFAULT_GLIBC_TUNABLES },
      description: expect.stringMatching(/fixed 128 KiB mmap threshold/),
    });
    expect(chooseAllocator('glibc', {}, null).env).toEqual({ GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072' });
  });

  it('jemalloc preloads the installed library; missing, it is a configuration error', () => {
    expect(chooseAllocator('jemalloc', {}, LIB)).toEqual({ env: { LD_PRELOAD: LIB }, description: `jemalloc (${LIB})` });
    expect(() => chooseAllocator('jemalloc', {}, null)).toThrow(/TANDEM_MALLOC=jemalloc .* apt-get install libjemalloc2/);
  });

  it("system, or an operator's own LD_PRELOAD / GLIBC_TUNABLES, adds nothing", () => {
    expect(chooseAllocator('system', {}, LIB).env).toEqual({});
    expect(chooseAllocator('glibc', { LD_PRELOAD: '/opt/tcmalloc.so' }, LIB).env).toEqual({});
    expect(chooseAllocator('jemalloc', { GLIBC_TUNABLES: '' }, null).env).toEqual({});
  });

  it('finds the library only where it exists', () => {
    expect(findJemalloc(['/nonexistent/libjemalloc.so.2'])).toBeUndefined();
    expect(findJemalloc(['/nonexistent/a.so', '/proc/self/status'])).toBe('/proc/self/status');
  });

  // .ci/run and the Dockerfile install libjemalloc2.
  it('a child started with TANDEM_MALLOC=jemalloc really runs on jemalloc; the default does not', () => {
    const maps = (env: Record<string, string>): string =>
      execFileSync(process.execPath, ['-e', "process.stdout.write(require('fs').readFileSync('/proc/self/maps','utf8'))"], {
        env: { PATH: process.env.PATH ?? '', ...env },
        encoding: 'utf8',
      });
    expect(maps(chooseAllocator('jemalloc', {}).env)).toMatch(/libjemalloc\.so\.2/);
    expect(maps(chooseAllocator('glibc', {}).env)).not.toMatch(/libjemalloc/);
  });
});
