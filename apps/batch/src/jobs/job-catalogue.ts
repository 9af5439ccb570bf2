/**
 * Every BullMQ queue and job this app uses, with its payload type, in one place. Producers and
 * the worker go through these helpers, and assertJobCatalogue() runs at startup.
 */
export const BATCH_CHUNK_QUEUE = 'batch-chunks';

export const JOB_NAMES = {
  chunk: 'batch.chunk',
  /** A file batch's last step: stitch its parts into the output and error files. */
  finalize: 'batch.finalize',
} as const;

/** Only the address of the chunk travels: its items and state live in Postgres. */
export interface ChunkJobData {
  batchId: string;
  chunk: number;
}

export interface FinalizeJobData {
  batchId: string;
}

export interface JobPayloads {
  'batch.chunk': ChunkJobData;
  'batch.finalize': FinalizeJobData;
}

/** One finalize job per batch at a time (the finalizer is idempotent anyway). */
export function finalizeJobId(batchId: string): string {
  return `${batchId}_final`;
}

export function parseFinalizeJob(data: unknown): FinalizeJobData {
  const d = data as Partial<FinalizeJobData> | null;
  if (!d || typeof d.batchId !== 'string' || !UUID.test(d.batchId)) throw new Error(`malformed ${JOB_NAMES.finalize} payload`);
  return { batchId: d.batchId };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Deterministic job id, so re-enqueueing a chunk that is still queued is a no-op. (BullMQ forbids ':'.) */
export function chunkJobId(batchId: string, chunk: number): string {
  return `${batchId}_${chunk}`;
}

/** Payloads are checked when a job is taken, since the queue store is not trusted. */
export function parseChunkJob(name: string, data: unknown): ChunkJobData {
  if (name !== JOB_NAMES.chunk) throw new Error(`unknown job name ${name}`);
  const d = data as Partial<ChunkJobData> | null;
  if (!d || typeof d.batchId !== 'string' || !UUID.test(d.batchId) || !Number.isInteger(d.chunk) || (d.chunk as number) < 0) {
    throw new Error(`malformed ${name} payload`);
  }
  return { batchId: d.batchId, chunk: d.chunk as number };
}

/** Startup check: names are unique, queue-safe, and each round-trips through its parser. */
export function assertJobCatalogue(): void {
  const names = Object.values(JOB_NAMES);
  if (new Set(names).size !== names.length) throw new Error('job catalogue: duplicate job names');
  for (const n of [BATCH_CHUNK_QUEUE, ...names]) {
    if (!/^[a-z][a-z0-9.-]*$/.test(n)) throw new Error(`job catalogue: bad name ${n}`);
  }
  const sample: ChunkJobData = { batchId: '00000000-0000-4000-8000-000000000000', chunk: 0 };
  const back = parseChunkJob(JOB_NAMES.chunk, JSON.parse(JSON.stringify(sample)));
  if (back.batchId !== sample.batchId || back.chunk !== sample.chunk) throw new Error('job catalogue: chunk payload does not round-trip');
  if (chunkJobId(sample.batchId, 0).includes(':')) throw new Error('job catalogue: job ids must not contain ":"');
}
