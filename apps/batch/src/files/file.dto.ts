import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { z } from 'zod';
import { DomainException, intLike } from '@tandem/shared';
import { FILE_PURPOSES } from './file.types';

const ID = /^file-[0-9a-f]{24}$/;

/** `file-` and 96 random bits: the id is also the blob key, so it must never repeat or be guessable. */
export function newFileId(): string {
  return `file-${randomBytes(12).toString('hex')}`;
}

export const fileNotFound = (id: string): DomainException => DomainException.notFound(`file ${id.slice(0, 64)} not found`);

/** An id that cannot exist is answered exactly like a missing one (404). */
export function parseFileId(id: string): string {
  if (!ID.test(id)) throw fileNotFound(id);
  return id;
}

/** OpenAI's list parameters (limit 1–10,000, default 10,000; newest first). */
export const fileListSchema = z.object({
  after: z.string().max(64).optional(),
  limit: intLike.pipe(z.number().min(1).max(10_000)).default(10_000),
  order: z.enum(['asc', 'desc']).default('desc'),
  purpose: z.string().max(64).optional(),
});
export type FileListQuery = z.infer<typeof fileListSchema>;

/**
 * The upload's form fields (multipart) or query (raw body): `purpose`, optionally OpenAI's
 * `expires_after[anchor]=created_at` and `expires_after[seconds]`, and (raw bodies) `filename`.
 */
export const uploadFieldsSchema = z.object({
  purpose: z.enum(FILE_PURPOSES, { error: "must be 'batch'" }),
  'expires_after[anchor]': z.literal('created_at', { error: "must be 'created_at'" }).optional(),
  'expires_after[seconds]': intLike.pipe(z.number().min(3600)).optional(),
  filename: z.string().max(1000).optional(),
});
export type UploadFields = z.infer<typeof uploadFieldsSchema>;

/** A name safe to echo back: the last path segment, no control characters, at most 255 characters. */
export function cleanFilename(name: string | undefined, fallback = 'upload.jsonl'): string {
  const s = basename((name ?? '').replace(/\\/g, '/'))
    .replace(/[\u0000-\u001f\u007f"]/g, '')
    .trim();
  return (s || fallback).slice(0, 255);
}
