import { Module } from '@nestjs/common';
import { BatchCostService } from './batch-cost.service';
import { OnlineClaimService } from './online-claim.service';

/** Co-location, online side: claims on this node's CPU partition and batch's latency cost. */
@Module({ providers: [OnlineClaimService, BatchCostService], exports: [OnlineClaimService, BatchCostService] })
export class HybridModule {}
