import { AuditLogRepository } from '@tandem/persistence';
import { AdminPanelController } from './admin-panel.controller';
import { BatchApiClient } from './batch-api.client';
import { BatchProgressRepository } from './batch-progress.repository';
import { BatchesProxyController } from './batches-proxy.controller';
import { ModelsAdminController } from './models-admin.controller';
import { ModelsAdminService } from './models-admin.service';
import { PanelHistoryController } from './panel-history.controller';
import { PanelHistoryService } from './panel-history.service';

/**
 * Registered in GatewayModule itself (not a module of their own): the models endpoints need the
 * gateway-level AutoscalerService.
 */
export const ADMIN_PANEL_CONTROLLERS = [AdminPanelController, ModelsAdminController, BatchesProxyController, PanelHistoryController];
export const ADMIN_PANEL_PROVIDERS = [ModelsAdminService, BatchApiClient, AuditLogRepository, BatchProgressRepository, PanelHistoryService];
