import { counter, gauge, histogram } from '@tandem/shared';

/** Co-location metrics of one process (a gateway's online claims, a batch worker's units). */
export class HybridMetrics {
  readonly batchUnits = gauge({
    name: 'tandem_hybrid_batch_units',
    help: "This worker's batch units: owned, borrowed (revocable), busy",
    labelNames: ['kind'] as const,
  });
  readonly revocations = counter({ name: 'tandem_hybrid_batch_revocations_total', help: 'Borrowed batch units this worker had revoked by online demand' });
  readonly revokeRelease = histogram({
    name: 'tandem_hybrid_revoke_release_seconds',
    help: "From a batch unit revocation reaching the worker to the unit's cores being free (run suspended, or at its safe point)",
    buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  });
  readonly revokeFromLedger = histogram({
    name: 'tandem_hybrid_revoke_free_seconds',
    help: "From the ledger revoking a batch unit (the online claim's transaction) to the unit's cores being free, NOTIFY delivery included (database and node clocks)",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  });
  readonly onlineUnits = gauge({
    name: 'tandem_hybrid_online_units',
    help: 'Online units (CPU cores) claimed in the ledger for a model, and wanted',
    labelNames: ['model', 'kind'] as const,
  });
  readonly onlineShort = counter({
    name: 'tandem_hybrid_online_claim_short_total',
    help: 'Online claims the ledger could not grant (online partition full)',
    labelNames: ['model'] as const,
  });
}
