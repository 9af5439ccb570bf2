import type { Pool } from 'pg';
import type { DataSource } from 'typeorm';
import { AuditLogRepository, createPgPool } from '@tandem/persistence';
import { AllocationService } from './allocation.service';
import { SchedulerCapacityProvider } from './capacity-provider';
import { DeviceLedgerService } from './device-ledger.service';
import { RevocationListener } from './events/revocation.listener';
import { NvidiaSmiProbe, type GpuProbe } from './inventory/gpu-probe';
import { InventoryRepository } from './ledger/inventory.repository';
import { LedgerRepository } from './ledger/ledger.repository';
import { LeaseKeeper } from './lease/lease-keeper';
import { NodeAgent } from './node.agent';
import { Reaper } from './reaper.service';
import { silentLogger, type SchedulerLogger } from './scheduler.logger';
import { SchedulerMetrics } from './scheduler.metrics';
import type { SchedulerOptions } from './scheduler.options';

export interface SchedulerDeps {
  probe?: GpuProbe;
  logger?: SchedulerLogger;
  /** For the LISTEN connection (and an own pool); default the DataSource's url. */
  databaseUrl?: string;
  /**
   * The process's node-postgres pool for the ledger (PersistenceModule's `Pool`). Without one the
   * scheduler opens a small pool of its own on the database url and closes it in `stop()`.
   */
  pool?: Pool;
}

/**
 * The whole scheduler for one process, wired without Nest (the Nest module, the benchmark and
 * child-process tests all build it here). `start()` connects LISTEN, registers the node (if the
 * agent is enabled) and starts the lease keeper and reaper timers.
 */
export class Scheduler {
  readonly ledgerRepo: LedgerRepository;
  readonly inventoryRepo: InventoryRepository;
  readonly listener: RevocationListener;
  readonly keeper: LeaseKeeper;
  readonly metrics = new SchedulerMetrics();
  readonly allocations: AllocationService;
  readonly ledger: DeviceLedgerService;
  readonly agent: NodeAgent;
  readonly reaper: Reaper;
  readonly capacity: SchedulerCapacityProvider;
  private started = false;
  private readonly ownPool: Pool | null;

  constructor(
    ds: DataSource,
    readonly options: SchedulerOptions,
    deps: SchedulerDeps = {},
  ) {
    const logger = deps.logger ?? silentLogger;
    const url = deps.databaseUrl ?? (ds.options as { url?: string }).url;
    if (!url) throw new Error('scheduler: no database url for LISTEN');
    this.ownPool = deps.pool ? null : createPgPool({ url, poolSize: 4, applicationName: 'tandem-scheduler' });
    this.ledgerRepo = new LedgerRepository(deps.pool ?? this.ownPool!);
    this.inventoryRepo = new InventoryRepository(ds);
    this.listener = new RevocationListener(url, logger);
    this.keeper = new LeaseKeeper(this.ledgerRepo, this.listener, options, logger);
    this.allocations = new AllocationService(this.ledgerRepo, this.inventoryRepo, this.keeper, this.listener, this.metrics, options, logger);
    this.ledger = new DeviceLedgerService(this.inventoryRepo, this.ledgerRepo, new AuditLogRepository(ds));
    this.agent = new NodeAgent(this.inventoryRepo, deps.probe ?? new NvidiaSmiProbe(), options, logger);
    this.reaper = new Reaper(this.ledgerRepo, this.inventoryRepo, this.metrics, options, logger);
    this.capacity = new SchedulerCapacityProvider(this.allocations, this.ledger, options.nodeName, logger);
  }

  async start(): Promise<this> {
    if (this.started) return this;
    await this.listener.start();
    if (this.options.agentEnabled) await this.agent.start();
    this.keeper.start();
    this.reaper.start();
    this.started = true;
    return this;
  }

  /** Releases this process's leases, leaves the cluster, closes LISTEN. */
  async stop(): Promise<void> {
    if (this.started) {
      this.started = false;
      this.reaper.stop();
      this.keeper.stop();
      await this.allocations.releaseAll();
      if (this.options.agentEnabled) await this.agent.stop();
      await this.listener.stop();
    }
    if (this.ownPool && !this.ownPool.ended) await this.ownPool.end();
  }
}
