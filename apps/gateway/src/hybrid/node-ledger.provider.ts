import type { Provider } from '@nestjs/common';
import { AllocationService, DeviceLedgerService, SCHEDULER_OPTIONS, type SchedulerOptions } from '@tandem/scheduler';

/** What the co-location parts need of the device ledger: its services and this node's name. */
export interface NodeLedger {
  allocations: AllocationService;
  ledger: DeviceLedgerService;
  nodeName: string;
}

export const NODE_LEDGER = Symbol('NODE_LEDGER');

/**
 * Assembled once here instead of by hand in each service.
 * TODO(scheduler): SchedulerModule could export this itself (the batch app's BatchCapacity needs the same).
 */
export const nodeLedgerProvider: Provider = {
  provide: NODE_LEDGER,
  inject: [AllocationService, DeviceLedgerService, SCHEDULER_OPTIONS],
  useFactory: (allocations: AllocationService, ledger: DeviceLedgerService, opts: SchedulerOptions): NodeLedger => ({ allocations, ledger, nodeName: opts.nodeName }),
};
