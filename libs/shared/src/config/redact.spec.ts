import { describe, expect, it } from 'vitest';
import { displayValue, isSecretName, maskSecret, redactUrls } from './redact';

describe('redactUrls', () => {
  it('hides URL passwords and keeps the rest readable', () => {
    expect(redactUrls('postgres://user:secret@host:5432/db')).toBe('postgres://user:***@host:5432/db');
    expect(redactUrls('redis://:hunter2@cache:6379/0')).toBe('redis://:***@cache:6379/0');
    expect(redactUrls('rediss://default:p%40ss@cache')).toBe('rediss://default:***@cache');
    // An unencoded @ or : in the password: everything up to the last @ before the host goes.
    expect(redactUrls('postgresql://u:p@ss:w@db.internal/x')).toBe('postgresql://u:***@db.internal/x');
    expect(redactUrls('at postgres://a:b@h1/x and redis://c:d@h2')).toBe('at postgres://a:***@h1/x and redis://c:***@h2');
    expect(redactUrls('DATABASE_URL: must be a postgres:// URL (got "mysql://root:toor@db/app")')).toBe(
      'DATABASE_URL: must be a postgres:// URL (got "mysql://root:***@db/app")',
    );
  });

  it('hides passwords passed as query parameters', () => {
    expect(redactUrls('postgres://db/app?sslmode=require&password=s3cret&x=1')).toBe('postgres://db/app?sslmode=require&password=***&x=1');
    expect(redactUrls('redis://h?token=abc')).toBe('redis://h?token=***');
  });

  it('leaves URLs without a password, and plain text, alone', () => {
    for (const s of ['postgres://postgres@127.0.0.1:5432/tandem', 'redis://127.0.0.1:6379', 'http://u@h/p?q=1', 'no url here: a:b@c']) {
      expect(redactUrls(s)).toBe(s);
    }
  });
});

describe('secret names and values', () => {
  it('treats KEY, TOKEN, SECRET and PASSWORD names as secrets', () => {
    for (const n of ['TANDEM_ADMIN_KEY', 'API_TOKEN', 'JWT_SECRET', 'PGPASSWORD', 'aws_secret_access_key']) expect(isSecretName(n), n).toBe(true);
    for (const n of ['DATABASE_URL', 'GATEWAY_PORT', 'QUEUE_PREFIX']) expect(isSecretName(n), n).toBe(false);
  });

  it('never shows a secret value; shows URLs without their password', () => {
    expect(displayValue('TANDEM_ADMIN_KEY', 'short')).toBe('***');
    expect(displayValue('DATABASE_URL', 'postgres://u:pw@h/d')).toBe('postgres://u:***@h/d');
    expect(displayValue('GATEWAY_PORT', 'abc')).toBe('abc');
  });

  it('masks every occurrence of a secret, but not a too-short one', () => {
    expect(maskSecret('key abcd1234 and abcd1234 again', 'abcd1234')).toBe('key *** and *** again');
    expect(maskSecret('abc', 'ab')).toBe('abc');
    expect(maskSecret('abc', undefined)).toBe('abc');
  });
});
