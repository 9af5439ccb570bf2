import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigValidationError, env, parseEnv } from './env-parser';

const schema = z.object({ GATEWAY_PORT: env.port(8000), FLAG: env.bool(false), DATABASE_URL: env.postgresUrl().default('postgres://x/y') });

describe('parseEnv', () => {
  it('applies defaults and coerces values', () => {
    expect(parseEnv(schema, {})).toEqual({ GATEWAY_PORT: 8000, FLAG: false, DATABASE_URL: 'postgres://x/y' });
    expect(parseEnv(schema, { GATEWAY_PORT: '9000', FLAG: 'on', DATABASE_URL: '' })).toEqual({
      GATEWAY_PORT: 9000,
      FLAG: true,
      DATABASE_URL: 'postgres://x/y',
    });
  });

  it('names every bad variable and the value it got', () => {
    let err: unknown;
    try {
      parseEnv(schema, { GATEWAY_PORT: 'abc', DATABASE_URL: 'mysql://nope', FLAG: 'maybe' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigValidationError);
    const problems = (err as ConfigValidationError).problems;
    expect(problems).toHaveLength(3);
    expect(problems.find((p) => p.startsWith('GATEWAY_PORT:'))).toContain('(got "abc")');
    expect(problems.find((p) => p.startsWith('DATABASE_URL:'))).toContain('postgres://');
    expect(problems.find((p) => p.startsWith('FLAG:'))).toBeDefined();
  });

  it('rejects ports out of range', () => {
    expect(() => parseEnv(schema, { GATEWAY_PORT: '70000' })).toThrow(/GATEWAY_PORT/);
  });
});
