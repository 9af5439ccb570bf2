import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { chooseAllocator, DEFAULT_GLIBC_TUNABLES, findJemalloc } from './allocator-env';

const LIB = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2';

describe('launcher allocator choice', () => {
  it('auto and jemalloc preload jemalloc when it is installed', () => {
    expect(chooseAllocator('auto', {}, LIB)).toEqual({ env: { LD_PRELOAD: LIB }, description: `jemalloc (${LIB})` });
    expect(chooseAllocator('jemalloc', {}, LIB).env).toEqual({ LD_PRELOAD: LIB });
  });

  it('falls back to glibc with a fixed mmap threshold, and says how to get jemalloc', () => {
    const c = chooseAllocator('auto', {}, null);
    expect(c.env).toEqual({ GLIBC_TUNABLES: DEFAULT_GLIBC_TUNABLES });
    expect(c.description).toMatch(/install libjemalloc2/);
    expect(chooseAllocator('glibc', {}, LIB).env).toEqual({ GLIBC_TUNABLES: DEFAULT_GLIBC_TUNABLES });
  });

  it('an explicit jemalloc that is missing is a configuration error', () => {
    expect(() => chooseAllocator('jemalloc', {}, null)).toThrow(/TANDEM_MALLOC=jemalloc .* apt-get install libjemalloc2/);
  });

  it("leaves an operator's own LD_PRELOAD or GLIBC_TUNABLES alone", () => {
    expect(chooseAllocator('auto', { LD_PRELOAD: '/opt/tcmalloc.so' }, LIB).env).toEqual({});
    expect(chooseAllocator('jemalloc', { GLIBC_TUNABLES: '' }, null).env).toEqual({});
  });

  it('finds the library only where it exists', () => {
    expect(findJemalloc(['/nonexistent/libjemalloc.so.2'])).toBeUndefined();
    expect(findJemalloc(['/nonexistent/a.so', '/proc/self/status'])).toBe('/proc/self/status');
  });

  // .ci/run and the Dockerfile install libjemalloc2.
  it('a child started with the chosen env really runs on jemalloc', () => {
    const { env } = chooseAllocator('jemalloc', {});
    const maps = execFileSync(process.execPath, ['-e', "process.stdout.write(require('fs').readFileSync('/proc/self/maps','utf8'))"], {
      env: { PATH: process.env.PATH, ...env },
      encoding: 'utf8',
    });
    expect(maps).toMatch(/libjemalloc\.so\.2/);
  });
});
