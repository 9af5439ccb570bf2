import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DomainException, ErrorCode } from '../index';
import { parseInput } from './parse';

const schema = z.object({ limit: z.number().max(10, 'limit must be ≤ 10'), name: z.string() }).strict();

const errorOf = (f: () => unknown): DomainException => {
  try {
    f();
  } catch (e) {
    return e as DomainException;
  }
  throw new Error('no error thrown');
};

describe('parseInput', () => {
  it('returns the parsed value, and treats a missing value as {}', () => {
    expect(parseInput(schema, { limit: 3, name: 'a' })).toEqual({ limit: 3, name: 'a' });
    expect(parseInput(z.object({ x: z.number().default(1) }), undefined)).toEqual({ x: 1 });
  });

  it('a 400 naming every bad field, after what was parsed', () => {
    const e = errorOf(() => parseInput(schema, { limit: 11, name: 5 }, 'query'));
    expect(e).toBeInstanceOf(DomainException);
    expect(e.code).toBe(ErrorCode.InvalidArgument);
    expect(e.message).toMatch(/^invalid query: limit: limit must be ≤ 10; name: .+$/);
  });

  it('a problem with the whole value has no field part', () => {
    const e = errorOf(() => parseInput(z.string().uuid('batch id must be a UUID'), 'x', 'batch id'));
    expect(e.message).toBe('invalid batch id: batch id must be a UUID');
    expect(errorOf(() => parseInput(schema, [1])).message).toMatch(/^invalid request: /);
  });
});
