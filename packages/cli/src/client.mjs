// @ts-check
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** An expected failure (the server said no, a file is missing, …): printed as one line, no stack. */
export class CliError extends Error {
  /** @param {string} message @param {number} [exitCode] */
  constructor(message, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/**
 * @typedef {{ total: number, completed: number, failed: number }} RequestCounts
 * @typedef {{ id: string, object: 'batch', status: string, endpoint: string | null, input_file_id: string | null,
 *   output_file_id: string | null, error_file_id: string | null, created_at: number, completion_window: string | null,
 *   request_counts: RequestCounts, metadata: Record<string, string> | null, progress: number, eta_seconds: number | null,
 *   errors: { data: { message: string }[] } | null }} Batch
 * @typedef {{ id: string, bytes: number, filename: string }} FileObject
 */

/** OpenAI's end states; everything else is still moving. */
export const ENDED = new Set(['completed', 'failed', 'expired', 'cancelled']);

/** The batch API (`/v1/files`, `/v1/batches`) over fetch; every non-2xx becomes a CliError with the server's `{"error"}`. */
export class BatchClient {
  /** @param {string} baseUrl @param {string | undefined} key */
  constructor(baseUrl, key) {
    this.base = baseUrl.replace(/\/+$/, '');
    this.key = key;
  }

  /** @param {Record<string, string>} [extra] @returns {Record<string, string>} */
  headers(extra = {}) {
    return { ...(this.key ? { authorization: `Bearer ${this.key}` } : {}), ...extra };
  }

  /** @param {string} method @param {string} path @param {RequestInit} [init] @returns {Promise<Response>} */
  async send(method, path, init = {}) {
    let res;
    try {
      res = await fetch(`${this.base}${path}`, { method, ...init, headers: this.headers(/** @type {Record<string, string>} */ (init.headers ?? {})) });
    } catch (e) {
      const cause = /** @type {{ cause?: { code?: string, message?: string } }} */ (e).cause;
      throw new CliError(
        `cannot reach the batch API at ${this.base} (${cause?.code ?? cause?.message ?? /** @type {Error} */ (e).message}); set --url or TANDEM_BATCH_URL`,
      );
    }
    if (res.ok) return res;
    const text = await res.text().catch(() => '');
    let message = text.trim() || res.statusText;
    try {
      const body = /** @type {{ error?: unknown }} */ (JSON.parse(text));
      if (typeof body.error === 'string') message = body.error;
    } catch {
      // not JSON: the raw text is the message
    }
    throw new CliError(`${res.status}: ${message}`);
  }

  /** @template T @param {string} method @param {string} path @param {unknown} [body] @returns {Promise<T>} */
  async json(method, path, body) {
    const init = body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } };
    return /** @type {Promise<T>} */ ((await this.send(method, path, init)).json());
  }

  /** Streams a JSONL file up as the raw body (purpose=batch); never holds it whole. @param {string} path @returns {Promise<FileObject>} */
  async upload(path) {
    const size = await stat(path).then(
      (s) => s.size,
      () => {
        throw new CliError(`cannot read ${path}: no such file`);
      },
    );
    const q = new URLSearchParams({ purpose: 'batch', filename: basename(path) });
    const body = /** @type {ReadableStream} */ (Readable.toWeb(createReadStream(path)));
    // content-length lets the server refuse an oversized file (413) before the bytes are sent.
    const init = /** @type {RequestInit} */ ({ body, duplex: 'half', headers: { 'content-type': 'application/jsonl', 'content-length': String(size) } });
    return /** @type {Promise<FileObject>} */ ((await this.send('POST', `/v1/files?${q}`, init)).json());
  }

  /** @param {string} id @returns {Promise<Batch>} */
  batch(id) {
    return this.json('GET', `/v1/batches/${encodeURIComponent(id)}`);
  }

  /** Streams a file's content to `dest` (written as `dest.part`, renamed when whole). @param {string} fileId @param {string} dest @returns {Promise<number>} */
  async download(fileId, dest) {
    const res = await this.send('GET', `/v1/files/${encodeURIComponent(fileId)}/content`);
    if (!res.body) throw new CliError(`file ${fileId}: empty response`);
    const part = `${dest}.part`;
    let bytes = 0;
    const counted = Readable.fromWeb(/** @type {import('node:stream/web').ReadableStream<Uint8Array>} */ (res.body));
    counted.on('data', (/** @type {Buffer} */ c) => (bytes += c.length));
    try {
      await pipeline(counted, createWriteStream(part));
      await rename(part, dest);
    } catch (e) {
      await rm(part, { force: true });
      throw e;
    }
    return bytes;
  }
}
