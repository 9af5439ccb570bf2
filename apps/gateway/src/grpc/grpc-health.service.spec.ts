import { EventEmitter } from 'node:events';
import { status, type ServerErrorResponse } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { HealthService } from '@tandem/shared';
import { GrpcHealthService } from './grpc-health.service';

type Handler = (call: unknown, cb?: (err: ServerErrorResponse | null, res?: unknown) => void) => void;

/** Readiness that fails unexpectedly (a bug in a check), which the health service must not swallow. */
const broken = { readiness: () => Promise.reject(new Error('check exploded')) } as unknown as HealthService;

describe('grpc.health.v1 on an unexpected error', () => {
  it('Check answers INTERNAL with an error id (details and trailer) instead of hanging', async () => {
    const svc = new GrpcHealthService(broken);
    svc.setServing(true);
    const check = svc.handlers().Check as Handler;
    const err = await new Promise<ServerErrorResponse | null>((done) =>
      check({ request: { service: '' }, getPath: () => '/grpc.health.v1.Health/Check' }, done),
    );
    expect(err?.code).toBe(status.INTERNAL);
    const id = err?.metadata?.get('error-id')[0];
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(err?.details).toBe(`internal error (error id ${String(id)})`);
  });

  it('Watch ends the stream with the same INTERNAL status', async () => {
    const svc = new GrpcHealthService(broken);
    svc.setServing(true);
    const watch = svc.handlers().Watch as Handler;
    const call = Object.assign(new EventEmitter(), {
      request: { service: '' },
      getPath: () => '/grpc.health.v1.Health/Watch',
      write: () => true,
      end: () => undefined,
    });
    const err = new Promise<ServerErrorResponse>((done) => call.on('error', done));
    watch(call);
    expect((await err).code).toBe(status.INTERNAL);
    expect((await err).metadata?.get('error-id')).toHaveLength(1);
  });
});
