import { describe, expect, it } from 'vitest';
import { createRootLogger } from '@tandem/shared';
import { loadGatewayConfig } from '../config/gateway.config';
import type { InferenceService } from '../inference/inference.service';
import { LatencyWindow } from '../inference/latency-window';
import type { NodeLedger } from '@tandem/scheduler';
import { OnlineClaimService, WHOLE_GATEWAY } from './online-claim.service';

const silent = createRootLogger('silent', 'test');

/** A one-model inference service stand-in: only what demand() reads. */
function fakeInference(): { svc: InferenceService; request: (ms: number) => void } {
  let started = 0;
  const latencies = new LatencyWindow();
  const svc = {
    latencies,
    serving: () => [{ model: 'm', version: '1', device: 'cpu', threadsPerReplica: 1, autoscaling: undefined, replicas: 1, queueDepth: 0 }],
    versions: () => [{ model: 'm', version: '1', state: 'ready', replicas: 1, queueDepth: 0 }],
    startedCount: () => started,
    ongoing: () => 0,
  } as unknown as InferenceService;
  return { svc, request: (ms) => (started++, latencies.record('m', ms)) };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('OnlineClaimService demand', () => {
  it('without an SLO a model with traffic wants its replicas’ threads, and nothing when idle', () => {
    const { svc, request } = fakeInference();
    const s = new OnlineClaimService(
      loadGatewayConfig({ LOG_LEVEL: 'silent', HYBRID_HOLD_DOWN_MS: '200', HYBRID_ONLINE_CLAIM: 'replicas' }),
      {} as NodeLedger,
      svc,
      silent,
    );
    expect(s.demand().get('m')).toBe(0);
    request(5);
    expect(s.demand().get('m')).toBe(1);
  });

  it('by default any traffic claims the whole online partition for the gateway, and nothing when idle', async () => {
    const { svc, request } = fakeInference();
    const s = new OnlineClaimService(loadGatewayConfig({ LOG_LEVEL: 'silent', HYBRID_HOLD_DOWN_MS: '200' }), {} as NodeLedger, svc, silent);
    expect([...s.demand()]).toEqual([[WHOLE_GATEWAY, 0]]);
    request(5);
    expect([...s.demand()]).toEqual([[WHOLE_GATEWAY, Number.POSITIVE_INFINITY]]);
    await sleep(40); // past 2 ticks (10 ms) without a request: no longer wanted (the claimer's hold-down keeps the share)
    expect([...s.demand()]).toEqual([[WHOLE_GATEWAY, 0]]);
  });

  it('with an SLO: the whole partition on traffic after idle; back to its threads once p99 stayed under half the SLO', async () => {
    const { svc, request } = fakeInference();
    const s = new OnlineClaimService(
      loadGatewayConfig({
        LOG_LEVEL: 'silent',
        HYBRID_HOLD_DOWN_MS: '200',
        HYBRID_ONLINE_P99_TARGET_MS: '10',
        HYBRID_TICK_MS: '20',
        HYBRID_ONLINE_CLAIM: 'replicas',
      }),
      {} as NodeLedger,
      svc,
      silent,
    );
    request(2);
    expect(s.demand().get('m')).toBe(Number.POSITIVE_INFINITY); // traffic after idle: protect first
    for (let i = 0; i < 15; i++) {
      for (let j = 0; j < 5; j++) request(2); // fast: p99 2 ms < 10 / 2
      s.demand();
      await sleep(20);
    }
    request(2);
    expect(s.demand().get('m')).toBe(1);
    for (let i = 0; i < 30; i++) request(25); // p99 above the SLO
    expect(s.demand().get('m')).toBe(Number.POSITIVE_INFINITY);
    expect(s.slo()).toMatchObject({ p99TargetMs: 10, models: [{ model: 'm', boosted: true }] });
  });
});
