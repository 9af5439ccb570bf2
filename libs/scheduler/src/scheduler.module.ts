import { DynamicModule, Global, Inject, Injectable, Module, OnModuleInit, BeforeApplicationShutdown } from '@nestjs/common';
import { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { AllocationService } from './allocation.service';
import { SchedulerCapacityProvider } from './capacity-provider';
import { DeviceLedgerService } from './device-ledger.service';
import { RevocationListener } from './events/revocation.listener';
import type { GpuProbe } from './inventory/gpu-probe';
import { NODE_LEDGER, type NodeLedger } from './node-ledger';
import { NodeAgent } from './node.agent';
import { Scheduler } from './scheduler';
import type { SchedulerLogger } from './scheduler.logger';
import { SCHEDULER_OPTIONS, type SchedulerOptions } from './scheduler.options';

export interface SchedulerModuleParams {
  options: SchedulerOptions;
  logger?: SchedulerLogger;
  /** Replaces nvidia-smi (tests). */
  probe?: GpuProbe;
}

@Injectable()
class SchedulerLifecycle implements OnModuleInit, BeforeApplicationShutdown {
  constructor(@Inject(Scheduler) private readonly scheduler: Scheduler) {}
  async onModuleInit(): Promise<void> {
    await this.scheduler.start();
  }
  // Before the DataSource closes (PersistenceModule does that on application shutdown).
  async beforeApplicationShutdown(): Promise<void> {
    await this.scheduler.stop();
  }
}

/**
 * The device ledger for a Nest app (needs PersistenceModule). Exposes the Scheduler and its parts:
 * AllocationService, DeviceLedgerService, NodeAgent, RevocationListener, SchedulerCapacityProvider,
 * and NODE_LEDGER (those services with this node's name, for the co-location parts).
 */
@Global()
@Module({})
export class SchedulerModule {
  static forRoot(p: SchedulerModuleParams): DynamicModule {
    const from = <T>(pick: (s: Scheduler) => T) => ({ inject: [Scheduler], useFactory: pick });
    return {
      module: SchedulerModule,
      providers: [
        { provide: SCHEDULER_OPTIONS, useValue: p.options },
        {
          provide: Scheduler,
          inject: [DataSource, Pool],
          useFactory: (ds: DataSource, pool: Pool) => new Scheduler(ds, p.options, { logger: p.logger, probe: p.probe, pool }),
        },
        { provide: AllocationService, ...from((s) => s.allocations) },
        { provide: DeviceLedgerService, ...from((s) => s.ledger) },
        { provide: NodeAgent, ...from((s) => s.agent) },
        { provide: RevocationListener, ...from((s) => s.listener) },
        { provide: SchedulerCapacityProvider, ...from((s) => s.capacity) },
        {
          provide: NODE_LEDGER,
          ...from((s): NodeLedger => ({ allocations: s.allocations, ledger: s.ledger, nodeName: s.options.nodeName, hintDir: s.options.hintDir })),
        },
        SchedulerLifecycle,
      ],
      exports: [SCHEDULER_OPTIONS, Scheduler, AllocationService, DeviceLedgerService, NodeAgent, RevocationListener, SchedulerCapacityProvider, NODE_LEDGER],
    };
  }
}
