import { afterEach, describe, expect, it, vi } from 'vitest';
import { DomainException } from '@tandem/shared';
import type { AuditLogRepository } from '@tandem/persistence';
import type { ApiKeyRepository } from './api-key.repository';
import { ApiKeyService } from './api-key.service';
import type { AuthOptions } from './auth.options';

const OPTIONS: AuthOptions = {
  enabled: true,
  bootstrapAdminKey: undefined,
  openHealth: true,
  openMetrics: true,
  rateLimitRps: 0,
  rateLimitBurst: 1,
  authFailRps: 0,
  authFailBurst: 1,
};

describe('ApiKeyService while Postgres is unreachable', () => {
  it('answers an unknown key with a plain 503: the driver error (which names the host) is not passed on', async () => {
    const down = { findActiveByHash: async () => Promise.reject(new Error('connect ECONNREFUSED db-internal.example:5432')) } as unknown as ApiKeyRepository;
    const svc = new ApiKeyService(down, {} as AuditLogRepository, OPTIONS);
    const err = await svc.verify('tdm_' + 'x'.repeat(40)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DomainException);
    expect((err as DomainException).message).toBe('cannot verify the API key right now');
    expect(JSON.stringify(err)).not.toMatch(/db-internal|ECONNREFUSED/);
  });
});

describe('ApiKeyService cache', () => {
  afterEach(() => vi.useRealTimers());
  const KEY = 'tdm_' + 'k'.repeat(40);
  function counting(): { repo: ApiKeyRepository; calls: () => number; revoke: () => void } {
    let n = 0;
    let revoked = false;
    const repo = {
      findActiveByHash: async () => {
        n++;
        return revoked ? null : { id: 'k1', name: 'k', scopes: ['infer'] };
      },
    } as unknown as ApiKeyRepository;
    return { repo, calls: () => n, revoke: () => (revoked = true) };
  }

  it('authorizeNow decides a key verified within the cache lifetime at once, and leaves an unknown or expired one to authorize', async () => {
    vi.useFakeTimers();
    const { repo, calls, revoke } = counting();
    const svc = new ApiKeyService(repo, {} as AuditLogRepository, OPTIONS);
    expect(svc.authorizeNow(KEY, 'infer', '10.0.0.1')).toBeUndefined(); // never seen: needs a lookup
    expect(calls()).toBe(0);
    expect((await svc.authorize(KEY, 'infer', '10.0.0.1')).id).toBe('k1');
    expect(svc.authorizeNow(KEY, 'infer', '10.0.0.1')?.id).toBe('k1'); // cached: no lookup, no promise
    expect(() => svc.authorizeNow(KEY, 'admin', '10.0.0.1')).toThrow("this key lacks the 'admin' scope");
    expect(() => svc.authorizeNow(undefined, 'infer', '10.0.0.1')).toThrow(/missing API key/);
    expect(() => svc.authorizeNow('short', 'infer', '10.0.0.1')).toThrow('invalid or revoked API key');
    expect(calls()).toBe(1);
    revoke();
    await vi.advanceTimersByTimeAsync(6_000); // past the 5 s entry, no background refresh (not bootstrapped)
    expect(svc.authorizeNow(KEY, 'infer', '10.0.0.1')).toBeUndefined(); // expired: looked up again
    await expect(svc.authorize(KEY, 'infer', '10.0.0.1')).rejects.toThrow('invalid or revoked API key');
    expect(calls()).toBe(2);
  });

  it('concurrent misses of one key share one lookup', async () => {
    const { repo, calls } = counting();
    const svc = new ApiKeyService(repo, {} as AuditLogRepository, OPTIONS);
    const got = await Promise.all(Array.from({ length: 10 }, () => svc.verify(KEY)));
    expect(got.map((p) => p?.id)).toEqual(Array(10).fill('k1'));
    expect(calls()).toBe(1);
  });

  it('a key in use is verified again in the background, so a request after a pause does not wait; revocation still lands within 5 s', async () => {
    vi.useFakeTimers();
    const { repo, calls, revoke } = counting();
    const svc = new ApiKeyService(repo, {} as AuditLogRepository, OPTIONS);
    await svc.onApplicationBootstrap();
    expect((await svc.verify(KEY))?.id).toBe('k1');
    expect(calls()).toBe(1);
    await vi.advanceTimersByTimeAsync(8_000); // a pause longer than the 5 s entry
    const before = calls();
    expect(before).toBeGreaterThanOrEqual(2); // refreshed meanwhile
    expect((await svc.verify(KEY))?.id).toBe('k1');
    expect(calls()).toBe(before); // served from the refreshed entry: no lookup on the request path
    revoke();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(await svc.verify(KEY)).toBeNull();
    svc.onModuleDestroy();
  });
});
