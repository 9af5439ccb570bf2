import { DomainException } from '@tandem/shared';

export const HEADER_LENGTH = 'inference-header-content-length';

/**
 * Splits an infer body into its JSON header and binary section (binary tensor data
 * extension). JSON bodies arrive parsed; octet-stream bodies arrive as a Buffer whose first
 * `Inference-Header-Content-Length` bytes are the JSON header.
 */
export function splitInferBody(body: unknown, headerLength: string | string[] | undefined): { header: unknown; binary?: Buffer } {
  if (body === undefined || body === null) throw DomainException.invalid('request body is required');
  if (!Buffer.isBuffer(body)) {
    if (headerLength !== undefined) {
      throw DomainException.invalid('Inference-Header-Content-Length needs a binary body (Content-Type: application/octet-stream)');
    }
    return { header: body };
  }
  let n = body.length;
  if (headerLength !== undefined) {
    const raw = Array.isArray(headerLength) ? headerLength[0] : headerLength;
    if (raw === undefined || !/^\d{1,12}$/.test(raw)) throw DomainException.invalid('Inference-Header-Content-Length must be a non-negative integer');
    n = Number(raw);
    if (n > body.length) {
      throw DomainException.invalid(`Inference-Header-Content-Length ${n} is past the end of the ${body.length}-byte body`);
    }
  }
  let header: unknown;
  try {
    header = JSON.parse(body.toString('utf8', 0, n));
  } catch (e) {
    throw DomainException.invalid(`malformed JSON inference header: ${(e as Error).message}`);
  }
  return n < body.length || headerLength !== undefined ? { header, binary: body.subarray(n) } : { header };
}
