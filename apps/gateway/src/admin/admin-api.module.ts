import { Module } from '@nestjs/common';
import { AutoscalerModule } from '../autoscaler/autoscaler.module';
import { BatchApiClient } from '../admin-panel/batch-api.client';
import { BatchProgressRepository } from '../admin-panel/batch-progress.repository';
import { ModelsAdminService } from '../admin-panel/models-admin.service';
import { PanelHistoryService } from '../admin-panel/panel-history.service';
import { HybridModule } from '../hybrid/hybrid.module';
import { ApiKeysController } from './api-keys.controller';
import { BatchesProxyController } from './batches-proxy.controller';
import { HybridAdminController } from './hybrid-admin.controller';
import { ModelsAdminController } from './models-admin.controller';
import { PanelHistoryController } from './panel-history.controller';
import { SchedulerAdminController } from './scheduler-admin.controller';

/**
 * Every `/admin/api/…` route (the auth table gives them all the `admin` scope; bootstrap caps
 * their bodies at ADMIN_BODY_LIMIT_BYTES). The ledger, keys and audit log come from the global
 * Scheduler, Auth and Persistence modules.
 */
@Module({
  imports: [AutoscalerModule, HybridModule],
  controllers: [SchedulerAdminController, ApiKeysController, HybridAdminController, ModelsAdminController, PanelHistoryController, BatchesProxyController],
  providers: [ModelsAdminService, BatchApiClient, BatchProgressRepository, PanelHistoryService],
})
export class AdminApiModule {}
