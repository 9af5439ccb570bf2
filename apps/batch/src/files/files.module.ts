import { DynamicModule, Module } from '@nestjs/common';
import { Pool } from 'pg';
import { BlobStores } from '@tandem/persistence';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';
import { FileRetentionService } from './file-retention.service';
import { FileRepository } from './file.repository';
import { FileService } from './file.service';
import { FilesBodyRegistrar } from './files-body.registrar';
import { FilesController } from './files.controller';

/**
 * The Files API (issue 15): `/v1/files` over a blob store (Postgres large objects by default,
 * or a local directory), and the retention sweeper. Registered for the API roles (api|all);
 * expects PersistenceModule (its DataSource and pg Pool).
 */
@Module({})
export class FilesModule {
  static forRoot(cfg: BatchConfig): DynamicModule {
    return {
      module: FilesModule,
      controllers: [FilesController],
      providers: [
        { provide: BATCH_CONFIG, useValue: cfg },
        {
          provide: BlobStores,
          inject: [Pool],
          useFactory: (pool: Pool) => BlobStores.create(pool, { kind: cfg.files.blobStore, dir: cfg.files.blobDir }),
        },
        FileRepository,
        FileService,
        FileRetentionService,
        FilesBodyRegistrar,
      ],
      exports: [BlobStores, FileService],
    };
  }
}
