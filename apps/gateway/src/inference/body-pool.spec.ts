import { describe, expect, it } from 'vitest';
import { BodyPool } from './body-pool';

describe('BodyPool (recycled request bodies)', () => {
  it('hands out a power-of-two class at least as large as asked, and the same buffer again once given back', () => {
    const pool = new BodyPool(1 << 20, 4096, 1 << 18);
    const a = pool.take(110_600);
    expect(a.byteLength).toBe(131_072);
    expect(pool.take(100).byteLength).toBe(4096);
    pool.give(a);
    expect(pool.idleBytes).toBe(131_072);
    expect(pool.take(70_000)).toBe(a); // same class
    expect(pool.idleBytes).toBe(0);
  });

  it('ignores a second give of the same buffer and buffers it did not hand out', () => {
    const pool = new BodyPool();
    const a = pool.take(5000);
    pool.give(a);
    pool.give(a); // twice would hand one buffer to two requests
    pool.give(new ArrayBuffer(8192));
    expect(pool.idleBytes).toBe(8192);
    const b = pool.take(5000);
    expect(b).toBe(a);
    expect(pool.take(5000)).not.toBe(a);
  });

  it('keeps at most maxFreeBytes free, allocates bodies above maxBytes as they come, and drops detached buffers', () => {
    const pool = new BodyPool(8192, 4096, 16_384);
    const [a, b, c] = [pool.take(4096), pool.take(4096), pool.take(4096)];
    for (const x of [a, b, c]) pool.give(x);
    expect(pool.idleBytes).toBe(8192);
    const big = pool.take(20_000);
    expect(big.byteLength).toBe(20_000);
    pool.give(big);
    expect(pool.idleBytes).toBe(8192);
    const pool2 = new BodyPool();
    const e = pool2.take(4096);
    structuredClone(e, { transfer: [e] }); // detached: moved to another thread
    pool2.give(e);
    expect(pool2.idleBytes).toBe(0);
  });
});
