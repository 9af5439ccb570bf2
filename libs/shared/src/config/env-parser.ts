import { z } from 'zod';
import { displayValue, isSecretName, maskSecret, redactUrls } from './redact';

/**
 * Thrown when environment variables fail validation; the message names every bad variable.
 * Problems are redacted here too (URL passwords), whoever built them.
 */
export class ConfigValidationError extends Error {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    const clean = problems.map(redactUrls);
    super(`Invalid configuration:\n${clean.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = clean;
    this.name = 'ConfigValidationError';
  }
}

export type EnvSource = Readonly<Record<string, string | undefined>>;

/**
 * Validates `env` against a zod object whose keys are environment variable names.
 * Empty strings count as unset, so `FOO= npm start` falls back to the default.
 */
export function parseEnv<S extends z.ZodObject>(schema: S, env: EnvSource): z.infer<S> {
  const cleaned: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') cleaned[key] = value;
  }
  const result = schema.safeParse(cleaned);
  if (result.success) return result.data;
  // A secret's value is never echoed, not even inside a validator's own message.
  const secrets = Object.keys(schema.shape)
    .filter((k) => isSecretName(k) && cleaned[k] !== undefined)
    .map((k) => cleaned[k]);
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.join('.') || '(env)';
    const got = env[name];
    const shown = got === undefined ? '' : isSecretName(name) ? ' (value hidden)' : ` (got "${displayValue(name, got)}")`;
    return secrets.reduce((text, secret) => maskSecret(text, secret), `${name}: ${issue.message}${shown}`);
  });
  throw new ConfigValidationError(problems);
}

/** Common field builders, so every app validates ports and URLs the same way. */
export const env = {
  port: (def: number) => z.coerce.number({ error: 'must be a port number' }).int('must be an integer').min(0).max(65535).default(def),
  int: (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
    z.coerce.number({ error: 'must be a number' }).int('must be an integer').min(min).max(max).default(def),
  num: (def: number, min = 0, max = Number.MAX_VALUE) => z.coerce.number({ error: 'must be a number' }).min(min).max(max).default(def),
  bool: (def: boolean) =>
    z
      .enum(['true', 'false', '1', '0', 'on', 'off', 'yes', 'no'], { error: 'must be true/false' })
      .default(def ? 'true' : 'false')
      .transform((v) => ['true', '1', 'on', 'yes'].includes(v)),
  postgresUrl: () => z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL'),
  redisUrl: () => z.string().regex(/^rediss?:\/\//, 'must be a redis:// URL'),
  logLevel: () => z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
};
