import { Controller, Get, Inject } from '@nestjs/common';
import { AllocationService, DeviceLedgerService, type OnlineClaimView } from '@tandem/scheduler';
import { BatchCostService, type DeviceCost } from '../hybrid/batch-cost.service';
import { OnlineClaimService } from '../hybrid/online-claim.service';

interface HolderView {
  holder: string;
  kind: 'online' | 'batch';
  /** Share held in total (fractions of a device), and the part of it that is borrowed (revocable). */
  share: number;
  owned: number;
  borrowed: number;
  states: Record<string, number>;
  allocations: number;
}

export interface HybridView {
  devices: {
    id: string;
    kind: string;
    cores: number | null;
    partition: { online: number; batch: number; batchMayBorrow: boolean };
    used: { online: number; batch: number; borrowed: number; pendingOnline: number };
  }[];
  holders: HolderView[];
  online: { enabled: boolean; claims: OnlineClaimView[]; slo: ReturnType<OnlineClaimService['slo']> };
  /** Borrowed batch allocations this gateway's online claims revoked since it started. */
  preemptionsByThisGateway: number;
  /** Per device of this gateway's node: online p99 now vs its no-batch baseline. */
  batchCost: DeviceCost[];
}

const round = (x: number): number => Math.round(x * 1000) / 1000;

/** `GET /admin/api/hybrid`: who holds what on each device, owned vs borrowed, and preemptions. */
@Controller('admin/api')
export class HybridAdminController {
  constructor(
    @Inject(DeviceLedgerService) private readonly ledger: DeviceLedgerService,
    @Inject(AllocationService) private readonly allocations: AllocationService,
    @Inject(OnlineClaimService) private readonly claims: OnlineClaimService,
    @Inject(BatchCostService) private readonly cost: BatchCostService,
  ) {}

  /** Just the batch's latency cost per device (the panel polls it; cheaper than the full view). */
  @Get('hybrid/cost')
  batchCost(): { batchCost: DeviceCost[] } {
    return { batchCost: this.cost.view() };
  }

  @Get('hybrid')
  async hybrid(): Promise<HybridView> {
    const [devices, allocations, preempted] = await Promise.all([
      this.ledger.listDevices(),
      this.ledger.listAllocations({ limit: 1000 }),
      this.allocations.preemptions(),
    ]);
    const holders = new Map<string, HolderView>();
    for (const a of allocations) {
      const key = `${a.kind}|${a.holder}`;
      let h = holders.get(key);
      if (!h) {
        h = { holder: a.holder, kind: a.kind, share: 0, owned: 0, borrowed: 0, states: {}, allocations: 0 };
        holders.set(key, h);
      }
      h.allocations++;
      h.states[a.state] = (h.states[a.state] ?? 0) + 1;
      h.share = round(h.share + a.share);
      if (a.borrowed) h.borrowed = round(h.borrowed + a.share);
      else h.owned = round(h.owned + a.share);
    }
    return {
      devices: devices.map((d) => ({
        id: d.id,
        kind: d.kind,
        cores: d.cores,
        partition: { online: d.partition.online, batch: d.partition.batch, batchMayBorrow: d.partition.batchMayBorrow },
        used: { online: d.used.online, batch: d.used.batch, borrowed: d.used.borrowed, pendingOnline: d.used.pendingOnline },
      })),
      holders: [...holders.values()].sort((a, b) => (a.kind === b.kind ? a.holder.localeCompare(b.holder) : a.kind === 'online' ? -1 : 1)),
      online: { enabled: this.claims.enabled, claims: this.claims.snapshot(), slo: this.claims.slo() },
      preemptionsByThisGateway: preempted,
      batchCost: this.cost.view(),
    };
  }
}
