import { describe, expect, it } from 'vitest';
import { fixHeapGrowth } from './heap-growth';

describe('fixHeapGrowth', () => {
  it('leaves an operator-given --heap-growing-percent alone', () => {
    expect(fixHeapGrowth(['--heap-growing-percent=50'])).toBe(false);
    expect(fixHeapGrowth(['--heap_growing_percent=50'])).toBe(false);
  });
});
