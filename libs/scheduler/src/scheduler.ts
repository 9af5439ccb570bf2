import type { DataSource } from 'typeorm';
import { AuditLogRepository } from '@tandem/persistence';
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
  /** For the LISTEN connection; default the DataSource's url. */
  databaseUrl?: string;
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

  constructor(
    ds: DataSource,
    readonly options: SchedulerOptions,
    deps: SchedulerDeps = {},
  ) {
    const logger = deps.logger ?? silentLogger;
    const url = deps.databaseUrl ?? (ds.options as { url?: string }).url;
    if (!url) throw new Error('scheduler: no database url for LISTEN');
    this.ledgerRepo = new LedgerRepository(ds);
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
    if (!this.started) return;
    this.started = false;
    this.reaper.stop();
    this.keeper.stop();
    await this.allocations.releaseAll();
    if (this.options.agentEnabled) await this.agent.stop();
    await this.listener.stop();
  }
}
