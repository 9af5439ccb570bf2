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

  it('never prints a password or a key: URLs redacted, secret-named values hidden', () => {
    const withSecrets = z.object({
      DATABASE_URL: env.postgresUrl(),
      REDIS_URL: env.redisUrl(),
      TANDEM_ADMIN_KEY: z.string().min(16, 'must be at least 16 characters'),
      SERVICE_TOKEN: z.string().regex(/^tok_/, 'must start with tok_'),
      GATEWAY_PORT: env.port(8000),
    });
    const bad = {
      DATABASE_URL: 'mysql://admin:db-pass-123@db.internal/app',
      REDIS_URL: 'http://:redis-pass-456@cache',
      TANDEM_ADMIN_KEY: 'short-key-789',
      SERVICE_TOKEN: 'leaky-token-000',
      GATEWAY_PORT: 'port-short-key-789', // a non-secret value that happens to contain a secret
    };
    let err: ConfigValidationError | undefined;
    try {
      parseEnv(withSecrets, bad);
    } catch (e) {
      err = e as ConfigValidationError;
    }
    expect(err).toBeInstanceOf(ConfigValidationError);
    for (const secret of ['db-pass-123', 'redis-pass-456', 'short-key-789', 'leaky-token-000']) {
      expect(err!.message).not.toContain(secret);
      expect(err!.problems.join('\n')).not.toContain(secret);
    }
    expect(err!.problems).toEqual([
      'DATABASE_URL: must be a postgres:// URL (got "mysql://admin:***@db.internal/app")',
      'REDIS_URL: must be a redis:// URL (got "http://:***@cache")',
      'TANDEM_ADMIN_KEY: must be at least 16 characters (value hidden)',
      'SERVICE_TOKEN: must start with tok_ (value hidden)',
      'GATEWAY_PORT: must be a port number (got "port-***")',
    ]);
  });

  it('redacts URL passwords in problems built elsewhere too', () => {
    const e = new ConfigValidationError(['REDIS_URL is set but Redis does not answer at redis://u:pw@h:6379']);
    expect(e.message).toContain('redis://u:***@h:6379');
    expect(e.message).not.toContain('pw@');
  });

  it('rejects ports out of range', () => {
    expect(() => parseEnv(schema, { GATEWAY_PORT: '70000' })).toThrow(/GATEWAY_PORT/);
  });
});
