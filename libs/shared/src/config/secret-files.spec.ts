import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigValidationError } from './env-parser';
import { withSecretFiles } from './secret-files';

const dir = mkdtempSync(join(tmpdir(), 'secret-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('withSecretFiles', () => {
  it('fills NAME from the file NAME_FILE names, without the trailing newline', () => {
    const f = join(dir, 'admin_key');
    writeFileSync(f, 'k3y-from-a-docker-secret\n');
    const out = withSecretFiles({ TANDEM_ADMIN_KEY_FILE: f, OTHER: 'x' });
    expect(out.TANDEM_ADMIN_KEY).toBe('k3y-from-a-docker-secret');
    expect(out.OTHER).toBe('x');
  });

  it('leaves the source alone when no *_FILE is set', () => {
    expect(withSecretFiles({ TANDEM_ADMIN_KEY: 'plain-value-123456' })).toEqual({ TANDEM_ADMIN_KEY: 'plain-value-123456' });
  });

  it('rejects both NAME and NAME_FILE, and an unreadable file, without printing a secret', () => {
    const f = join(dir, 'db_url');
    writeFileSync(f, 'postgres://u:hunter2@db/x');
    let err: unknown;
    try {
      withSecretFiles({ DATABASE_URL: 'postgres://u:other@db/x', DATABASE_URL_FILE: f, REDIS_URL_FILE: join(dir, 'missing') });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigValidationError);
    const problems = (err as ConfigValidationError).problems;
    expect(problems).toEqual([
      'DATABASE_URL_FILE: set either DATABASE_URL or DATABASE_URL_FILE, not both',
      `REDIS_URL_FILE: cannot read "${join(dir, 'missing')}" (ENOENT)`,
    ]);
    expect((err as Error).message).not.toContain('hunter2');
  });
});
