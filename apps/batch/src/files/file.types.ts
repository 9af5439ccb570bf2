import type { BlobStoreKind } from '@tandem/persistence';

/** The only purpose Tandem accepts: a JSONL file of requests for the Batch API. */
export const FILE_PURPOSES = ['batch'] as const;
export type FilePurpose = (typeof FILE_PURPOSES)[number];

/** A `batch_file` row as the service sees it. */
export interface FileRow {
  id: string;
  seq: number;
  owner: string;
  purpose: string;
  filename: string;
  bytes: number;
  lineCount: number;
  sha256: string | null;
  blobStore: BlobStoreKind;
  blobKey: string;
  createdAt: Date;
  expiresAt: Date;
}

/** OpenAI's File object. */
export interface FileView {
  id: string;
  object: 'file';
  bytes: number;
  /** Unix seconds. */
  created_at: number;
  filename: string;
  purpose: string;
  /** Deprecated by OpenAI, still sent: a stored file is always `processed` here. */
  status: 'processed';
  /** Unix seconds. */
  expires_at: number;
}

export interface FileList {
  object: 'list';
  data: FileView[];
  has_more: boolean;
  first_id: string | null;
  last_id: string | null;
}

export interface FileDeleted {
  id: string;
  object: 'file';
  deleted: true;
}

const unix = (d: Date): number => Math.floor(d.getTime() / 1000);

export function toFileView(r: FileRow): FileView {
  return {
    id: r.id,
    object: 'file',
    bytes: r.bytes,
    created_at: unix(r.createdAt),
    filename: r.filename,
    purpose: r.purpose,
    status: 'processed',
    expires_at: unix(r.expiresAt),
  };
}
