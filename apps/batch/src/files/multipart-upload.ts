import type { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import type { Multipart } from '@fastify/multipart';
import { DomainException } from '@tandem/shared';
import { parseInput } from '@tandem/shared';
import { bodyTooLarge } from '../batches/ndjson-body.registrar';
import { chunksOf } from '../batches/stream-chunks';
import { cleanFilename, uploadFieldsSchema, type UploadFields } from './file.dto';
import type { FileService, ReceivedFile } from './file.service';
import type { FileView } from './file.types';
import type { Tenant } from '../batches/batch.types';

/**
 * Runs one multipart upload (`purpose` and `file`, in either order: the official openai client
 * sends them in the order of its caller's object keys, usually the file first). The file part
 * streams into the store as it is parsed; the fields are checked as soon as they are all known,
 * so a bad `purpose` after the file costs the stored bytes, which are then deleted.
 *
 * `bodyBytes` caps the whole body as it arrives (a chunked body declares no length): past it the
 * parser is detached and the upload ends in a 413 (naming the file limit, the one a client can
 * act on); the rest is drained after the answer.
 */
export async function multipartUpload(
  req: FastifyRequest,
  who: Tenant,
  files: FileService,
  limits: { fileBytes: number; bodyBytes: number },
): Promise<FileView> {
  const fields: Record<string, string> = {};
  let received: ReceivedFile | undefined;
  let current: Readable | undefined;
  let pending: Promise<ReceivedFile> | undefined;
  const parts = req.parts(); // pipes the request into busboy; the budget only watches
  const overflow = bodyBudget(req, limits.bodyBytes, limits.fileBytes);
  try {
    for (;;) {
      const next = await Promise.race([parts.next(), overflow.promise]);
      if (next.done) break;
      const part: Multipart = next.value;
      if (part.type === 'field') {
        if (typeof part.value !== 'string' || part.valueTruncated) throw DomainException.invalid(`${part.fieldname}: must be a short text field`);
        fields[part.fieldname] = part.value;
        if (part.fieldname === 'purpose') parseInput(uploadFieldsSchema.pick({ purpose: true }), { purpose: part.value });
        continue;
      }
      current = part.file;
      if (part.fieldname !== 'file' || received) throw DomainException.invalid(`unexpected file part '${part.fieldname}': send one file, as 'file'`);
      // The budget rejects the receive too, so a body that overflows mid-file stops at once.
      pending = files.receive(who, cleanFilename(part.filename), chunksOf(part.file));
      received = await Promise.race([pending, overflow.promise]);
    }
    if (!received) throw DomainException.invalid('file: missing (send the JSONL file as the multipart field "file")');
    const opts: UploadFields = parseInput(uploadFieldsSchema, fields);
    const view = await files.complete(received, opts);
    received = undefined;
    return view;
  } catch (e) {
    // Detach the parser (destroying its file stream makes @fastify/multipart unpipe the request),
    // so the drain after the answer reads the rest of the body instead of feeding busboy.
    current?.destroy();
    req.raw.unpipe();
    if (received) await files.abandon(received).catch(() => undefined);
    // Overtaken by the budget: the receive fails on the destroyed stream (and cleans up), or (if
    // it had just finished) its bytes are dropped here; awaited, so nothing stays once we answer.
    else
      await pending
        ?.then(
          (r) => files.abandon(r),
          () => undefined,
        )
        .catch(() => undefined);
    throw e;
  } finally {
    overflow.stop();
  }
}

/** A promise that rejects with a 413 once the raw body passes `max` bytes. */
function bodyBudget(req: FastifyRequest, max: number, fileLimit: number): { promise: Promise<never>; stop(): void } {
  let seen = 0;
  let fail!: (e: Error) => void;
  const promise = new Promise<never>((_, reject) => (fail = reject));
  promise.catch(() => undefined); // observed by the races above; no unhandled rejection when none is pending
  const onData = (b: Buffer): void => {
    seen += b.length;
    if (seen > max) {
      req.raw.off('data', onData);
      fail(bodyTooLarge(fileLimit));
    }
  };
  req.raw.on('data', onData);
  return { promise, stop: () => req.raw.off('data', onData) };
}
