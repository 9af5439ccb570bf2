import { z } from 'zod';
import { DomainException, intLike } from '@tandem/shared';
import { PUBLIC_STATES } from '../batches/batch.types';

const UUID = /^([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})$/i;

/** OpenAI-style id of a file batch: `batch_` and the row's uuid without dashes. */
export function toFileBatchId(uuid: string): string {
  return `batch_${uuid.replace(/-/g, '')}`;
}

/** `batch_<32 hex>` → the row's uuid; anything else cannot exist (404, as for a missing batch). */
export function parseFileBatchId(id: string): string {
  const m = /^batch_([0-9a-f]{32})$/i.exec(id);
  const u = m ? UUID.exec(m[1]!) : null;
  if (!u) throw DomainException.notFound(`batch ${id.slice(0, 64)} not found`);
  return u.slice(1, 6).join('-').toLowerCase();
}

export const isFileBatchId = (id: string): boolean => id.startsWith('batch_');

const WINDOW = /^([1-9]\d{0,6})(s|m|h)$/;
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000 } as const;
/** OpenAI accepts "24h" only; Tandem takes any duration from 1 s to 7 days written `<n>s`, `<n>m` or `<n>h`. */
export const MAX_WINDOW_MS = 7 * 24 * 3_600_000;

export function windowMs(w: string): number | null {
  const m = WINDOW.exec(w);
  if (!m) return null;
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  return ms <= MAX_WINDOW_MS ? ms : null;
}

/** `deadline` as epoch ms: a number (or digit string) is epoch seconds, anything else an ISO 8601 time; null if neither. */
export function deadlineMs(d: number | string): number | null {
  if (typeof d === 'number') return Number.isFinite(d) ? d * 1000 : null;
  if (/^\d{1,12}(\.\d+)?$/.test(d)) return Number(d) * 1000;
  const t = Date.parse(d);
  return /^\d{4}-\d{2}-\d{2}T/.test(d) && Number.isFinite(t) ? t : null;
}

/**
 * OpenAI's create body; `chunk_lines` is Tandem's own (requests per chunk, default
 * BATCH_FILE_CHUNK_LINES), and so is `deadline` (an absolute completion time that replaces the
 * window; then `completion_window` may be left out).
 */
export const createFileBatchSchema = z
  .object({
    input_file_id: z.string().min(1).max(64),
    endpoint: z.string().min(1).max(500),
    completion_window: z
      .string()
      .refine((w) => windowMs(w) !== null, 'must be a duration like "24h" (1s to 168h; <n>s, <n>m or <n>h)')
      .optional(),
    deadline: z
      .union([z.number(), z.string().max(64)])
      .refine((d) => deadlineMs(d) !== null, 'must be an ISO 8601 time or epoch seconds')
      .optional(),
    metadata: z
      .record(z.string().max(64), z.string().max(512))
      .refine((m) => Object.keys(m).length <= 16, 'at most 16 keys')
      .nullable()
      .optional(),
    chunk_lines: z.number().int().min(1).max(100_000).optional(),
  })
  .refine((b) => b.completion_window !== undefined || b.deadline !== undefined, {
    message: 'completion_window or deadline is required',
    path: ['completion_window'],
  });
export type CreateFileBatch = z.infer<typeof createFileBatchSchema>;

/**
 * GET /v1/batches: OpenAI's `after`/`limit` and the chord API's `cursor`/`state`/`limit` (the
 * admin panel's); both shapes are in every answer.
 */
export const anyListSchema = z.object({
  after: z.string().max(64).optional(),
  limit: intLike.pipe(z.number().min(1).max(500)).default(50),
  cursor: z
    .string()
    .regex(/^\d{1,18}$/, 'cursor must come from nextCursor')
    .transform(Number)
    .optional(),
  state: z.enum(PUBLIC_STATES).optional(),
});
export type AnyListQuery = z.infer<typeof anyListSchema>;
