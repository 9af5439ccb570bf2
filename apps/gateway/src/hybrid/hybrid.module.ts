import { Module } from '@nestjs/common';
import { BatchCostService } from './batch-cost.service';
import { nodeLedgerProvider } from './node-ledger.provider';
import { OnlineClaimService } from './online-claim.service';

/** Co-location, online side: claims on this node's CPU partition and batch's latency cost. */
@Module({ providers: [nodeLedgerProvider, OnlineClaimService, BatchCostService], exports: [OnlineClaimService, BatchCostService] })
export class HybridModule {}
