import { Inject, Injectable } from '@nestjs/common';
import { DataSource, IsNull } from 'typeorm';
import { ApiKeyEntity, type ApiKeyScope } from '@tandem/persistence';

@Injectable()
export class ApiKeyRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  private get repo() {
    return this.ds.getRepository(ApiKeyEntity);
  }

  insert(row: Pick<ApiKeyEntity, 'id' | 'name' | 'hash' | 'scopes' | 'createdBy'>): Promise<ApiKeyEntity> {
    return this.repo.save(this.repo.create({ ...row, revokedAt: null }));
  }

  /** Inserts or replaces the row with this id (the bootstrap key follows TANDEM_ADMIN_KEY). */
  async upsert(row: Pick<ApiKeyEntity, 'id' | 'name' | 'hash' | 'scopes' | 'createdBy'>): Promise<void> {
    await this.ds.query(
      `INSERT INTO "api_key" ("id","name","hash","scopes","created_by") VALUES ($1,$2,$3,$4,$5)
       ON CONFLICT ("id") DO UPDATE SET "hash" = EXCLUDED."hash", "scopes" = EXCLUDED."scopes", "revoked_at" = NULL`,
      [row.id, row.name, row.hash, row.scopes, row.createdBy],
    );
  }

  findActiveByHash(hash: string): Promise<ApiKeyEntity | null> {
    return this.repo.findOne({ where: { hash, revokedAt: IsNull() } });
  }

  list(): Promise<ApiKeyEntity[]> {
    return this.repo.find({ order: { createdAt: 'ASC' } });
  }

  findById(id: string): Promise<ApiKeyEntity | null> {
    return this.repo.findOne({ where: { id } });
  }

  async revoke(id: string): Promise<boolean> {
    const r = await this.repo.update({ id, revokedAt: IsNull() }, { revokedAt: new Date() });
    return (r.affected ?? 0) > 0;
  }

  async countActiveWithScope(scope: ApiKeyScope): Promise<number> {
    const rows: { n: number }[] = await this.ds.query(`SELECT count(*)::int AS n FROM "api_key" WHERE "revoked_at" IS NULL AND $1 = ANY("scopes")`, [scope]);
    return rows[0]?.n ?? 0;
  }
}
