import { describe, expect, it } from 'vitest';
import { Ring } from './ring';

describe('Ring', () => {
  it('keeps the newest entries, oldest first', () => {
    const r = new Ring<number>(3);
    expect([r.toArray(), r.last(), r.length]).toEqual([[], undefined, 0]);
    r.push(1);
    r.push(2);
    expect([r.toArray(), r.last()]).toEqual([[1, 2], 2]);
    for (const x of [3, 4, 5]) r.push(x);
    expect([r.toArray(), r.last(), r.length]).toEqual([[3, 4, 5], 5, 3]);
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new Ring(0)).toThrow(/positive integer/);
    expect(() => new Ring(1.5)).toThrow(/positive integer/);
  });
});
