import { describe, expect, it } from 'vitest';
import { loadGatewayConfig } from '../config/gateway.config';
import type { InferenceService } from '../inference/inference.service';
import { LatencyWindow } from '../inference/latency-window';
import { BATCH_PRESENCE_MS, BatchCostService } from './batch-cost.service';
import type { NodeLedger } from '@tandem/scheduler';
import type { OnlineClaimService } from './online-claim.service';

/** A one-model gateway and a ledger whose CPU device shows `batch` cores used by batch. */
function setup(): { svc: BatchCostService; latencies: LatencyWindow; ledger: { batch: number }; claims: { lastPreemptionAt: number | null } } {
  const latencies = new LatencyWindow();
  const inference = {
    latencies,
    serving: () => [{ model: 'm', version: '1', device: 'cpu', threadsPerReplica: 1, autoscaling: undefined, replicas: 1, queueDepth: 0 }],
  } as unknown as InferenceService;
  const ledger = { batch: 0 };
  const node = {
    nodeName: 'n1',
    ledger: { usableDevices: async () => [{ id: 'n1/cpu', used: { batch: ledger.batch, borrowed: ledger.batch } }] },
  } as unknown as NodeLedger;
  const claims = { lastPreemptionAt: null as number | null };
  const svc = new BatchCostService(loadGatewayConfig({ LOG_LEVEL: 'silent' }), node, inference, claims as unknown as OnlineClaimService);
  return { svc, latencies, ledger, claims };
}

/** `n` requests of `ms` each spread over the second ending at `end`. */
const second = (w: LatencyWindow, end: number, ms: number, n = 50): void => {
  for (let i = 0; i < n; i++) w.record('m', ms, end - 1_000 + (i * 1_000) / n + 1);
};

describe('BatchCostService (online p99 now vs its no-batch baseline)', () => {
  it('learns the baseline while no batch is present and reports the ratio while one is', async () => {
    const { svc, latencies, ledger } = setup();
    let t = 100_000;
    for (let s = 0; s < 10; s++, t += 1_000) {
      second(latencies, t, 10);
      await svc.sample(t);
    }
    expect(svc.view(t - 1_000)).toEqual([
      { device: 'n1/cpu', batchPresent: false, ratio: 1, models: [{ model: 'm', p99NowMs: 10, baselineP99Ms: 10, ratio: 1 }] },
    ]);
    ledger.batch = 1; // a batch borrows the device; online latency doubles
    for (let s = 0; s < 10; s++, t += 1_000) {
      second(latencies, t, 20);
      await svc.sample(t);
    }
    const [d] = svc.view(t - 1_000);
    expect(d).toMatchObject({ batchPresent: true, ratio: 2, models: [{ p99NowMs: 20, baselineP99Ms: 10 }] });
  });

  it('a batch the gateway just revoked still counts as present for 30 s, so its seconds stay out of the baseline', async () => {
    const { svc, latencies, claims } = setup();
    const t0 = 200_000;
    claims.lastPreemptionAt = t0;
    second(latencies, t0 + 1_000, 30);
    await svc.sample(t0 + 1_000);
    expect(svc.view(t0 + 1_000)[0]).toMatchObject({ batchPresent: true, models: [{ baselineP99Ms: null, ratio: null }] });
    const later = t0 + BATCH_PRESENCE_MS + 2_000;
    second(latencies, later, 12);
    await svc.sample(later);
    expect(svc.view(later)[0]).toMatchObject({ batchPresent: false, ratio: 1, models: [{ baselineP99Ms: 12 }] });
  });
});
