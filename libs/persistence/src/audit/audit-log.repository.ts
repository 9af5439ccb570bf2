import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { AuditLogEntity } from '../entities/audit-log.entity';

export interface AuditEntry {
  actor: string;
  action: string;
  target: string;
  details?: Record<string, unknown>;
}

@Injectable()
export class AuditLogRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /** Pass `manager` to record inside the caller's transaction (the change and its audit commit together). */
  async record(entry: AuditEntry, manager: EntityManager = this.ds.manager): Promise<AuditLogEntity> {
    const row = manager.create(AuditLogEntity, { ...entry, details: entry.details ?? {} });
    return manager.save(row);
  }

  async list(limit = 100, beforeId?: string): Promise<AuditLogEntity[]> {
    const qb = this.ds.getRepository(AuditLogEntity).createQueryBuilder('a').orderBy('a.id', 'DESC').limit(limit);
    if (beforeId) qb.where('a.id < :beforeId', { beforeId });
    return qb.getMany();
  }
}
