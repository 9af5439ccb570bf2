import type { AllocationService } from './allocation.service';
import type { DeviceLedgerService } from './device-ledger.service';

/** What the co-location parts (batch capacity, online claims, cost) need: the ledger's services and this node's name. */
export interface NodeLedger {
  allocations: AllocationService;
  ledger: DeviceLedgerService;
  nodeName: string;
  /** SchedulerOptions.hintDir: where the gateway raises the node-local online-demand hint. */
  hintDir?: string | null;
}

/** Nest token: SchedulerModule provides the NodeLedger of its Scheduler. */
export const NODE_LEDGER = Symbol('NODE_LEDGER');
