import { readFileSync } from 'node:fs';
import { ConfigValidationError, type EnvSource } from './env-parser';

/** Variables that may come from a file instead (Docker/Kubernetes secrets): `NAME_FILE=/run/secrets/x`. */
export const SECRET_FILE_VARS = ['TANDEM_ADMIN_KEY', 'DATABASE_URL', 'REDIS_URL'] as const;

/**
 * Returns `source` with each `NAME` filled from the file `NAME_FILE` names (trailing newlines
 * trimmed), so a secret never has to sit in the environment, `docker inspect` or a compose file.
 * Both set, or an unreadable file, is a config error; the file's content is never printed.
 */
export function withSecretFiles(
  source: EnvSource,
  names: readonly string[] = SECRET_FILE_VARS,
  read: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): EnvSource {
  const out: Record<string, string | undefined> = { ...source };
  const problems: string[] = [];
  for (const name of names) {
    const path = source[`${name}_FILE`];
    if (path === undefined || path === '') continue;
    if (source[name] !== undefined && source[name] !== '') {
      problems.push(`${name}_FILE: set either ${name} or ${name}_FILE, not both`);
      continue;
    }
    try {
      out[name] = read(path).replace(/[\r\n]+$/, '');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'unreadable';
      problems.push(`${name}_FILE: cannot read "${path}" (${code})`);
    }
  }
  if (problems.length > 0) throw new ConfigValidationError(problems);
  return out;
}
