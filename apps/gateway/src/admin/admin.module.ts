import { Module } from '@nestjs/common';
import { SchedulerAdminController } from './scheduler-admin.controller';

/** The admin API; its services come from the global SchedulerModule. */
@Module({ controllers: [SchedulerAdminController] })
export class AdminModule {}
