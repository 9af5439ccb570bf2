import { describe, expect, it } from 'vitest';
import { DomainException, ErrorCode } from '@tandem/shared';
import { QuotaAllowance, quotasApply } from './batch-quota';

const quotas = { concurrentBatches: 2, queuedItems: 100, storedBytes: 1000 };
const usage = (openBatches: number, queuedItems: number, storedBytes: number) => ({ openBatches, queuedItems, storedBytes });

function codeOf(fn: () => unknown): ErrorCode | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof DomainException ? e.code : undefined;
  }
  return undefined;
}

describe('QuotaAllowance', () => {
  it('admits under every quota and tracks what the new batch may still add', () => {
    const a = QuotaAllowance.admit(quotas, usage(1, 60, 400));
    expect(() => a.checkItems(40)).not.toThrow();
    expect(codeOf(() => a.checkItems(41))).toBe(ErrorCode.RateLimited);
    expect(() => a.checkBytes(600)).not.toThrow();
    expect(codeOf(() => a.checkBytes(601))).toBe(ErrorCode.PayloadTooLarge);
  });

  it('refuses a new batch at the open-batch quota (429) and at the storage quota (413)', () => {
    expect(codeOf(() => QuotaAllowance.admit(quotas, usage(2, 0, 0)))).toBe(ErrorCode.RateLimited);
    expect(() => QuotaAllowance.admit(quotas, usage(2, 0, 0))).toThrow(/already has 2 open batches .*at most 2/);
    expect(codeOf(() => QuotaAllowance.admit(quotas, usage(0, 0, 1000)))).toBe(ErrorCode.PayloadTooLarge);
  });

  it('0 means unlimited; admins are exempt', () => {
    const none = { concurrentBatches: 0, queuedItems: 0, storedBytes: 0 };
    const a = QuotaAllowance.admit(none, usage(1e6, 1e12, 1e15));
    expect(() => a.checkItems(1e9)).not.toThrow();
    expect(() => a.checkBytes(1e15)).not.toThrow();
    expect(quotasApply(none, false)).toBe(false);
    expect(quotasApply(quotas, true)).toBe(false);
    expect(quotasApply(quotas, false)).toBe(true);
  });
});
