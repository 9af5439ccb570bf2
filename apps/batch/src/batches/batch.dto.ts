import { z } from 'zod';
import { DomainException, intLike } from '@tandem/shared';
import { PUBLIC_STATES } from './batch.types';

/** Submission options: the JSON body (with `items`) or, for NDJSON uploads, the query string. */
export const submitOptionsSchema = z.object({
  task: z.string().min(1).max(100),
  model: z.string().min(1).max(200).optional(),
  reducer: z.string().min(1).max(100),
  chunkSize: intLike.optional(),
  priority: intLike.pipe(z.number().min(0).max(100)).optional(),
  /** May its chunks run on idle online share (revoked when online needs it)? Default true. */
  borrow: z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]).optional(),
  idempotencyKey: z.string().min(1).max(200).optional(),
  maxAttempts: intLike.pipe(z.number().min(1).max(100)).optional(),
  failurePolicy: z.enum(['fail', 'continue']).optional(),
});
export type SubmitOptions = z.infer<typeof submitOptionsSchema>;

export const listQuerySchema = z.object({
  state: z.enum(PUBLIC_STATES).optional(),
  limit: intLike.pipe(z.number().min(1).max(500)).default(50),
  cursor: z
    .string()
    .regex(/^\d{1,18}$/, 'cursor must come from nextCursor')
    .transform(Number)
    .optional(),
});

export const pageQuerySchema = z.object({
  limit: intLike.pipe(z.number().min(1).max(1000)).default(100),
  cursor: z
    .string()
    .regex(/^\d{1,9}$/, 'cursor must come from nextCursor')
    .transform(Number)
    .optional(),
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function parseBatchId(id: string): string {
  if (!UUID.test(id)) throw DomainException.notFound(`batch ${id.slice(0, 64)} not found`);
  return id.toLowerCase();
}

/** zod → one 400 naming each bad field: the helper both apps share. */
