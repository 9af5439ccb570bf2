import { Inject, Injectable } from '@nestjs/common';
import { DomainException, ErrorCode } from '@tandem/shared';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway.config';

/** The batch app answers its control calls in milliseconds; a slower answer means trouble. */
export const BATCH_PROXY_TIMEOUT_MS = 5_000;
/** Largest batch-app answer relayed (a 500-batch list page is well under this). */
export const BATCH_PROXY_MAX_BYTES = 2 * 1024 * 1024;

export interface Upstream {
  status: number;
  body: unknown;
}

/**
 * Forwards the panel's batch calls to the batch app's `/v1/batches` API with the caller's own
 * Authorization header (the batch app authorizes them itself), a deadline and a size cap.
 */
@Injectable()
export class BatchApiClient {
  /** Per-call deadline (a field so tests can shorten it). */
  timeoutMs = BATCH_PROXY_TIMEOUT_MS;

  constructor(@Inject(GATEWAY_CONFIG) private readonly cfg: GatewayConfig) {}

  async call(method: 'GET' | 'POST', path: string, authorization: string | undefined): Promise<Upstream> {
    const url = `${this.cfg.batchApiUrl}/v1/batches${path}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { accept: 'application/json', ...(authorization ? { authorization } : {}) },
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: 'manual',
      });
    } catch (e) {
      throw DomainException.unavailable(`batch API at ${this.cfg.batchApiUrl} unreachable: ${reason(e, this.timeoutMs)}`, 5);
    }
    const text = await readCapped(res, this.timeoutMs);
    try {
      return { status: res.status, body: JSON.parse(text) };
    } catch {
      throw new DomainException(ErrorCode.Unavailable, `batch API answered ${res.status} with a non-JSON body`);
    }
  }

  /**
   * A GET whose successful answer is streamed through (a batch's NDJSON results); the deadline
   * covers the answer's start only. Failures are relayed like `call`'s.
   */
  async stream(path: string, authorization: string | undefined): Promise<Upstream | UpstreamStream> {
    const url = `${this.cfg.batchApiUrl}/v1/batches${path}`;
    const started = new AbortController();
    const timer = setTimeout(() => started.abort(new DOMException('no answer', 'TimeoutError')), this.timeoutMs);
    let res: Response;
    try {
      res = await fetch(url, {
        headers: { accept: 'application/x-ndjson, application/json', ...(authorization ? { authorization } : {}) },
        signal: started.signal,
        redirect: 'manual',
      });
    } catch (e) {
      throw DomainException.unavailable(`batch API at ${this.cfg.batchApiUrl} unreachable: ${reason(e, this.timeoutMs)}`, 5);
    } finally {
      clearTimeout(timer);
    }
    if (res.ok) return { status: res.status, contentType: res.headers.get('content-type') ?? 'application/octet-stream', body: res.body };
    const text = await readCapped(res, this.timeoutMs);
    try {
      return { status: res.status, body: JSON.parse(text) };
    } catch {
      throw new DomainException(ErrorCode.Unavailable, `batch API answered ${res.status} with a non-JSON body`);
    }
  }
}

/** An upstream answer whose body is relayed as it arrives (no size cap: a batch's results). */
export interface UpstreamStream {
  status: number;
  contentType: string;
  body: ReadableStream<Uint8Array> | null;
}

function reason(e: unknown, timeoutMs: number): string {
  if (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')) return `no answer within ${timeoutMs} ms`;
  const cause = e instanceof Error ? (e.cause as { code?: string; message?: string } | undefined) : undefined;
  return cause?.code ?? cause?.message ?? (e instanceof Error ? e.message : String(e));
}

async function readCapped(res: Response, timeoutMs: number): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? 0);
  if (declared > BATCH_PROXY_MAX_BYTES) {
    await res.body?.cancel();
    throw DomainException.unavailable(`batch API answer over ${BATCH_PROXY_MAX_BYTES} bytes`);
  }
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body) {
      size += chunk.byteLength;
      if (size > BATCH_PROXY_MAX_BYTES) {
        await res.body.cancel().catch(() => undefined);
        throw DomainException.unavailable(`batch API answer over ${BATCH_PROXY_MAX_BYTES} bytes`);
      }
      chunks.push(chunk);
    }
  } catch (e) {
    if (e instanceof DomainException) throw e;
    throw DomainException.unavailable(`batch API answer cut off: ${reason(e, timeoutMs)}`, 5);
  }
  return Buffer.concat(chunks).toString('utf8');
}
