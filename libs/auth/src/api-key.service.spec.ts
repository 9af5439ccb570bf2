import { describe, expect, it } from 'vitest';
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
