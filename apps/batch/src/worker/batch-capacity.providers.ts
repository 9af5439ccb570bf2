import { Inject, Injectable, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import { ROOT_LOGGER, type PinoLogger } from '@tandem/shared';
import { BatchCapacity, HybridMetrics, NODE_LEDGER, RevocationFastPath, type NodeLedger } from '@tandem/scheduler';
import type { BatchConfig } from '../config/batch.config';

@Injectable()
class BatchCapacityLifecycle implements OnApplicationShutdown {
  constructor(
    @Inject(BatchCapacity) private readonly capacity: BatchCapacity,
    @Inject(RevocationFastPath) private readonly fastPath: RevocationFastPath | null,
  ) {}
  async onApplicationShutdown(): Promise<void> {
    await this.capacity.stop();
    await this.fastPath?.stop();
  }
}

/** True when this process's infer units come from the device ledger (it embeds the scheduler). */
export function usesLedger(cfg: BatchConfig): boolean {
  return cfg.jobs.role !== 'api' && cfg.jobs.deviceShares === 'ledger';
}

/**
 * The worker's device units. Co-location (`ledger`): batch allocations of this node's devices,
 * borrowed online share included when a batch allows it. The API role never runs chunks, so it
 * gets a fixed pool it does not use.
 */
export function batchCapacityProviders(cfg: BatchConfig): Provider[] {
  const j = cfg.jobs;
  const options = {
    mode: usesLedger(cfg) ? ('ledger' as const) : ('fixed' as const),
    deviceKind: j.deviceKind,
    maxUnits: j.inferThreads,
    borrowHoldDownMs: j.borrowHoldDownMs,
    retryMs: 250,
    idleReleaseMs: j.unitIdleMs,
    gpuMemoryMiB: j.gpuMemoryMiB,
  };
  // CPU units are stopped by a thread of their own on revocation (RevocationFastPath); GPU runs end at their safe point anyway.
  const fastPath: Provider = {
    provide: RevocationFastPath,
    inject: [ROOT_LOGGER],
    useFactory: async (root: PinoLogger) =>
      usesLedger(cfg) && j.deviceKind === 'cpu'
        ? RevocationFastPath.start(cfg.databaseUrl, cfg.scheduler.nodeName, root.child({ component: 'revocation-fast-path' }), cfg.scheduler.hintDir)
        : null,
  };
  const capacity: Provider = usesLedger(cfg)
    ? {
        provide: BatchCapacity,
        inject: [ROOT_LOGGER, NODE_LEDGER, RevocationFastPath],
        useFactory: (root: PinoLogger, node: NodeLedger, fp: RevocationFastPath | null) => {
          const c = new BatchCapacity(options, root.child({ component: 'batch-capacity' }), node, new HybridMetrics());
          if (fp) c.useFastPath(fp);
          return c;
        },
      }
    : {
        provide: BatchCapacity,
        inject: [ROOT_LOGGER],
        useFactory: (root: PinoLogger) => new BatchCapacity(options, root.child({ component: 'batch-capacity' }), null, new HybridMetrics()),
      };
  return [fastPath, capacity, BatchCapacityLifecycle];
}
