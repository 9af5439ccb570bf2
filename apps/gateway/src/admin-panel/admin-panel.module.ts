import { Module } from '@nestjs/common';
import { AdminPanelController } from './admin-panel.controller';

/** `GET /admin[/<file>]`: the panel's static shell; its data comes from AdminApiModule. */
@Module({ controllers: [AdminPanelController] })
export class AdminPanelModule {}
