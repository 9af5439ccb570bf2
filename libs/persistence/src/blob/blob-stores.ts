import { DomainException } from '@tandem/shared';
import type { BlobStore, BlobStoreKind } from './blob-store';
import { DiskBlobStore } from './disk-blob-store';
import { PostgresBlobStore, type PgPool } from './postgres-blob-store';

export interface BlobStoreOptions {
  /** Where new blobs go. */
  kind: BlobStoreKind;
  /** The disk store's directory; null: this process has no disk store (required when `kind` is disk). */
  dir: string | null;
}

/**
 * The store new blobs are written to, and the stores this process reaches by kind. A blob
 * reference records its store. Postgres is reached from every process; a disk store only where
 * its directory is configured, which is never true of another node's disk: callers must not
 * act on (or sweep) references into a store this process does not reach.
 */
export class BlobStores {
  readonly primary: BlobStore;

  constructor(
    private readonly byKind: Readonly<Partial<Record<BlobStoreKind, BlobStore>>>,
    primary: BlobStoreKind,
  ) {
    const p = byKind[primary];
    if (!p) throw new Error(`blob store '${primary}' is not configured`);
    this.primary = p;
  }

  /** `pool`: the process's node-postgres pool (PersistenceModule's `Pool`). */
  static create(pool: PgPool, opts: BlobStoreOptions): BlobStores {
    const postgres = new PostgresBlobStore(pool);
    return new BlobStores(opts.dir === null ? { postgres } : { postgres, disk: new DiskBlobStore(opts.dir) }, opts.kind);
  }

  /** The kinds this process can read and delete. */
  get reachable(): BlobStoreKind[] {
    return (Object.keys(this.byKind) as BlobStoreKind[]).filter((k) => this.byKind[k] !== undefined);
  }

  /** The store of that kind; 503 when this process does not reach it. */
  of(kind: BlobStoreKind): BlobStore {
    const s = this.byKind[kind];
    if (!s)
      throw DomainException.unavailable(
        `the bytes are in the ${kind} blob store, which this process does not reach (see BATCH_BLOB_STORE, BATCH_BLOB_DIR)`,
        60,
      );
    return s;
  }
}
