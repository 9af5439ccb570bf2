import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { HealthService } from '@tandem/shared';
import type { GrpcReply } from './grpc-status.map';
import { GrpcHealthService } from './grpc-health.service';

/** Readiness that fails unexpectedly (a bug in a check), which the health service must not swallow. */
const broken = { readiness: () => Promise.reject(new Error('check exploded')) } as unknown as HealthService;
const base = {
  path: '/grpc.health.v1.Health/Watch',
  peer: '127.0.0.1',
  deadline: undefined,
  headers: {},
  message: Buffer.alloc(0),
  prechecked: false,
  request: { service: '' },
};

describe('grpc.health.v1 on an unexpected error', () => {
  it('Check rejects with the error (the server maps it to INTERNAL with an error id)', async () => {
    const svc = new GrpcHealthService(broken);
    svc.setServing(true);
    await expect(svc.check(base)).rejects.toThrow('check exploded');
  });

  it('Watch ends the stream with INTERNAL and an error-id trailer instead of hanging', async () => {
    const svc = new GrpcHealthService(broken);
    svc.setServing(true);
    const writes: unknown[] = [];
    const ended = new Promise<GrpcReply | undefined>((done) => svc.watch({ ...base, write: (r) => writes.push(r), end: done, onCancelled: () => undefined }));
    const reply = await ended;
    expect(reply?.code).toBe(status.INTERNAL);
    expect(reply?.trailers?.['error-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(reply?.details).toBe(`internal error (error id ${reply?.trailers?.['error-id']})`);
    expect(writes).toEqual([]);
  });
});
