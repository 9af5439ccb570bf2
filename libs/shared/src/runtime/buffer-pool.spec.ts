import { describe, expect, it } from 'vitest';
import { BufferPool } from './buffer-pool';

describe('BufferPool (recycled ArrayBuffers)', () => {
  it('hands out a power-of-two class at least as large as asked, and the same buffer again once given back', () => {
    const pool = new BufferPool(1 << 20, 4096, 1 << 18);
    const a = pool.take(110_600);
    expect(a.byteLength).toBe(131_072);
    expect(pool.take(100).byteLength).toBe(4096);
    pool.give(a);
    expect(pool.idleBytes).toBe(131_072);
    expect(pool.take(70_000)).toBe(a); // same class
    expect(pool.idleBytes).toBe(0);
  });

  it('ignores a second give of the same buffer and buffers it did not hand out', () => {
    const pool = new BufferPool();
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
    const pool = new BufferPool(8192, 4096, 16_384);
    const [a, b, c] = [pool.take(4096), pool.take(4096), pool.take(4096)];
    for (const x of [a, b, c]) pool.give(x);
    expect(pool.idleBytes).toBe(8192);
    const big = pool.take(20_000);
    expect(big.byteLength).toBe(20_000);
    pool.give(big);
    expect(pool.idleBytes).toBe(8192);
    const pool2 = new BufferPool();
    const e = pool2.take(4096);
    structuredClone(e, { transfer: [e] }); // detached: moved to another thread
    pool2.give(e);
    expect(pool2.idleBytes).toBe(0);
  });

  it('adopts a buffer that came back by transfer (a new object) when its size is one of its classes, and hands it out again', () => {
    const pool = new BufferPool(1 << 20, 4096, 1 << 18);
    const a = pool.take(100_000);
    expect(pool.owns(a)).toBe(true);
    const back = structuredClone(a, { transfer: [a] }); // there and back: same memory, another object
    expect(a.byteLength).toBe(0);
    expect(pool.owns(back)).toBe(false);
    pool.give(back); // not known by give()
    expect(pool.idleBytes).toBe(0);
    pool.adopt(back);
    pool.adopt(back); // twice: one buffer would go to two batches
    expect(pool.idleBytes).toBe(131_072);
    expect(pool.take(120_000)).toBe(back);
    expect(pool.take(120_000)).not.toBe(back);
    pool.adopt(back); // handed out again: a second adopt is ignored
    expect(pool.idleBytes).toBe(0);
    for (const odd of [new ArrayBuffer(100_000), new ArrayBuffer(2048), new ArrayBuffer(1 << 19)]) pool.adopt(odd); // not a class, below, above
    expect(pool.idleBytes).toBe(0);
  });
});
