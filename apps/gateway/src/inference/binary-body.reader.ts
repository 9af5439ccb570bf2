import type { FastifyRequest } from 'fastify';
import { errorCodes } from 'fastify';
import { requestBodies } from './body-pool';
import { HEADER_LENGTH } from './infer-body';

type Done = (err: Error | null, body?: Buffer) => void;

/**
 * Reads a binary-extension body into one buffer allocated up front (Content-Length is known)
 * and placed so the binary section after the JSON header starts 8-byte aligned: the tensors
 * are then decoded as views of the body, not copied out of it (tensorDataFromBinary). The
 * body limit is enforced as bytes arrive, with Fastify's own errors (413, 400 on a length
 * mismatch). A chunked body (no Content-Length) is gathered and copied once at the end.
 * The buffer comes from `requestBodies`; the infer route gives it back (see BufferPool).
 */
export function readAlignedBody(request: FastifyRequest, payload: NodeJS.ReadableStream, done: Done): void {
  const limit = request.routeOptions.bodyLimit;
  const declared = Number(request.headers['content-length']);
  const known = request.headers['content-length'] !== undefined && Number.isSafeInteger(declared) && declared >= 0;
  if (known && declared > limit) return done(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
  const raw = request.headers[HEADER_LENGTH];
  const headerLen = typeof raw === 'string' && /^\d{1,12}$/.test(raw) ? Number(raw) : 0;
  const pad = (8 - (headerLen % 8)) % 8;
  let body = known ? Buffer.from(requestBodies.take(pad + declared), pad, declared) : undefined;
  const chunks: Buffer[] = [];
  let received = 0;
  const finish = (err: Error | null, result?: Buffer): void => {
    payload.removeListener('data', onData);
    payload.removeListener('end', onEnd);
    payload.removeListener('error', onEnd);
    if (err && body) requestBodies.give(body.buffer);
    done(err, result);
  };
  function onData(chunk: Buffer | string): void {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (received + b.length > limit) return finish(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
    if (body) {
      if (received + b.length > body.length) return finish(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
      b.copy(body, received);
    } else chunks.push(b);
    received += b.length;
  }
  function onEnd(err?: Error & { statusCode?: number }): void {
    if (err) {
      if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400;
      return finish(err);
    }
    if (body) return received === body.length ? finish(null, body) : finish(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
    body = Buffer.from(requestBodies.take(pad + received), pad, received);
    let off = 0;
    for (const c of chunks) off += c.copy(body, off);
    finish(null, body);
  }
  payload.on('data', onData);
  payload.on('end', onEnd);
  payload.on('error', onEnd);
  payload.resume();
}
