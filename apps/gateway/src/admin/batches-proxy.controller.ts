import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { Controller, Get, Headers, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { DomainException, parseInput } from '@tandem/shared';
import { BatchApiClient, type Upstream, type UpstreamStream } from '../admin-panel/batch-api.client';

const batchId = z.string().uuid('batch id must be a UUID');
const listQuery = z
  .object({
    state: z.enum(['queued', 'running', 'paused', 'succeeded', 'failed', 'cancelled']).optional(),
    limit: z.coerce.number().int().min(1).max(500).optional(),
    cursor: z
      .string()
      .regex(/^\d{1,18}$/, 'cursor must come from nextCursor')
      .optional(),
  })
  .strict();
const errorsQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(1000).optional(),
    cursor: z
      .string()
      .regex(/^\d{1,9}$/, 'cursor must come from nextCursor')
      .optional(),
  })
  .strict();
const action = z.enum(['cancel', 'pause', 'resume'], { message: 'action must be cancel, pause or resume' });

function qs(q: Record<string, string | number | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

/**
 * `/admin/api/batches…`: the panel's view of the batch app (another process), relayed with the
 * caller's credentials; the batch app's status and `{"error"}` body pass through unchanged.
 */
@Controller('admin/api/batches')
export class BatchesProxyController {
  constructor(private readonly batches: BatchApiClient) {}

  @Get()
  list(@Query() q: unknown, @Headers('authorization') auth: string | undefined, @Res() reply: FastifyReply): Promise<void> {
    return this.relay(reply, this.batches.call('GET', qs(parseInput(listQuery, q, 'query')), auth));
  }

  @Get(':id')
  get(@Param('id') id: string, @Headers('authorization') auth: string | undefined, @Res() reply: FastifyReply): Promise<void> {
    return this.relay(reply, this.batches.call('GET', `/${parseInput(batchId, id, 'batch id')}`, auth));
  }

  @Get(':id/errors')
  errors(@Param('id') id: string, @Query() q: unknown, @Headers('authorization') auth: string | undefined, @Res() reply: FastifyReply): Promise<void> {
    const path = `/${parseInput(batchId, id, 'batch id')}/errors${qs(parseInput(errorsQuery, q, 'query'))}`;
    return this.relay(reply, this.batches.call('GET', path, auth));
  }

  /** Every item's output as NDJSON, streamed from the batch app (the panel's results download). */
  @Get(':id/results')
  async results(@Param('id') id: string, @Headers('authorization') auth: string | undefined, @Res() reply: FastifyReply): Promise<void> {
    const bid = parseInput(batchId, id, 'batch id');
    const r = await this.batches.stream(`/${bid}/results`, auth);
    if (!isStream(r)) return this.relay(reply, Promise.resolve(r));
    await reply
      .status(r.status)
      .header('Content-Type', r.contentType)
      .header('Content-Disposition', `attachment; filename="batch-${bid}-results.ndjson"`)
      .send(r.body ? Readable.fromWeb(r.body as WebReadableStream<Uint8Array>) : '');
  }

  @Post(':id/:action')
  @HttpCode(200)
  control(
    @Param('id') id: string,
    @Param('action') act: string,
    @Headers('authorization') auth: string | undefined,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const path = `/${parseInput(batchId, id, 'batch id')}/${parseInput(action, act, 'action')}`;
    return this.relay(reply, this.batches.call('POST', path, auth));
  }

  private async relay(reply: FastifyReply, upstream: Promise<Upstream>): Promise<void> {
    const r = await upstream;
    if (r.status >= 500 && !(typeof r.body === 'object' && r.body !== null && 'error' in r.body)) {
      throw DomainException.unavailable(`batch API failed with status ${r.status}`);
    }
    await reply.status(r.status).type('application/json').send(r.body);
  }
}

const isStream = (r: Upstream | UpstreamStream): r is UpstreamStream => 'contentType' in r;
