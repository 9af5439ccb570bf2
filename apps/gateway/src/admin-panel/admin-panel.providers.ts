import { AuditLogRepository } from '@tandem/persistence';
import { AdminPanelController } from './admin-panel.controller';
import { BatchApiClient } from './batch-api.client';
import { BatchesProxyController } from './batches-proxy.controller';
import { ModelsAdminController } from './models-admin.controller';
import { ModelsAdminService } from './models-admin.service';

/**
 * Registered in GatewayModule itself (not a module of their own): the models endpoints need the
 * gateway-level AutoscalerService.
 */
export const ADMIN_PANEL_CONTROLLERS = [AdminPanelController, ModelsAdminController, BatchesProxyController];
export const ADMIN_PANEL_PROVIDERS = [ModelsAdminService, BatchApiClient, AuditLogRepository];
