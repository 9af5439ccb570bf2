import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Body, Controller, Delete, Get, Headers, HttpCode, Param, Post, Query, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Inject } from '@nestjs/common';
import { principalOf } from '@tandem/auth';
import { DomainException, parseInput } from '@tandem/shared';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';
import { BatchControlService } from './batch-control.service';
import { BatchQueryService, type ErrorView } from './batch-query.service';
import { BatchSubmissionService, type ItemSource } from './batch-submission.service';
import { pageQuerySchema, parseBatchId, submitOptionsSchema } from './batch.dto';
import { bodyTooLarge, NDJSON } from './ndjson-body.registrar';
import { tenantOf } from './batch-tenant';
import type { Tenant } from './batch.types';
import type { BatchView } from './batch.view';
import { anyListSchema, createFileBatchSchema, isFileBatchId, parseFileBatchId } from '../file-batches/file-batch.dto';
import { FileBatchService, type AnyBatchList } from '../file-batches/file-batch.service';
import type { OpenAiBatchView } from '../file-batches/file-batch.view';

const EVENTS_POLL_MS = 500;
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

/** Every route acts for the key's principal: its own batches only, unless it is an admin. */
const tenant = (req: FastifyRequest): Tenant => tenantOf(principalOf(req));

@Controller('v1/batches')
export class BatchController {
  constructor(
    @Inject(BATCH_CONFIG) private readonly cfg: BatchConfig,
    private readonly submission: BatchSubmissionService,
    private readonly query: BatchQueryService,
    private readonly control: BatchControlService,
    private readonly files: FileBatchService,
  ) {}

  /**
   * JSON body `{task, items, reducer, ...}`, or NDJSON items with the options in the query string;
   * or OpenAI's `{input_file_id, endpoint, completion_window, metadata}`: a batch over a file.
   */
  @Post()
  async submit(
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
    @Body() body: unknown,
    @Query() query: Record<string, unknown>,
    @Headers('idempotency-key') idemHeader?: string,
  ): Promise<BatchView | OpenAiBatchView> {
    const isNdjson = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase() === NDJSON;
    let source: ItemSource;
    let raw: Record<string, unknown>;
    if (isNdjson) {
      // A rejected upload may still be arriving: NdjsonBodyRegistrar drains (bounded) and closes after the answer.
      const maxBytes = this.cfg.jobs.uploadLimitBytes;
      if (Number(req.headers['content-length']) > maxBytes) throw bodyTooLarge(maxBytes);
      raw = { ...query };
      source = { kind: 'ndjson', stream: body as Readable, limits: { maxBytes, maxLineBytes: this.cfg.jobs.uploadLineLimitBytes } };
    } else {
      // JSON: NdjsonBodyRegistrar's capped reader already answered 413 as the body limit was passed.
      if (typeof body !== 'object' || body === null || Array.isArray(body))
        throw DomainException.invalid('body must be a JSON object (or send application/x-ndjson)');
      if ('input_file_id' in body) {
        void reply.status(200); // OpenAI answers a created batch with 200
        return this.files.create(parseInput(createFileBatchSchema, body), tenant(req));
      }
      const { items, ...rest } = body as Record<string, unknown>;
      if (!Array.isArray(items)) throw DomainException.invalid('items: must be a JSON array (or upload application/x-ndjson)');
      raw = rest;
      source = { kind: 'array', items };
    }
    if (idemHeader && raw.idempotencyKey === undefined) raw.idempotencyKey = idemHeader;
    const opts = parseInput(submitOptionsSchema, raw);
    const who = tenant(req);
    const { batch, created } = await this.submission.submit(opts, source, who);
    void reply.status(created ? 201 : 200);
    if (created) void reply.header('Location', `/v1/batches/${batch.id}`);
    return this.query.get(batch.id, who);
  }

  /** Both kinds, newest first, in both shapes: OpenAI's list (`data`, `after`) and the chord API's page (`items`, `cursor`). */
  @Get()
  async list(@Req() req: FastifyRequest, @Query() q: Record<string, unknown>): Promise<AnyBatchList> {
    return this.files.list(parseInput(anyListSchema, q), tenant(req));
  }

  /** `batch_…`: a file batch, OpenAI's object; a uuid: any batch in the chord API's view. */
  @Get(':id')
  async get(@Req() req: FastifyRequest, @Param('id') id: string): Promise<BatchView | OpenAiBatchView> {
    if (isFileBatchId(id)) return this.files.get(id, tenant(req));
    return this.query.get(parseBatchId(id), tenant(req));
  }

  /** Deletes a finished batch (`batch_…` or its uuid) with its items and outputs, or output files (204); frees the key's stored bytes. */
  @Delete(':id')
  @HttpCode(204)
  async remove(@Req() req: FastifyRequest, @Param('id') id: string): Promise<void> {
    await this.control.remove(isFileBatchId(id) ? parseFileBatchId(id) : parseBatchId(id), tenant(req));
  }

  @Post(':id/cancel')
  async cancel(@Req() req: FastifyRequest, @Param('id') id: string, @Res({ passthrough: true }) reply: FastifyReply): Promise<BatchView | OpenAiBatchView> {
    if (isFileBatchId(id)) {
      void reply.status(200); // OpenAI's status for a cancel
      return this.files.cancel(id, tenant(req));
    }
    return this.control.cancel(parseBatchId(id), tenant(req));
  }

  @Post(':id/pause')
  async pause(@Req() req: FastifyRequest, @Param('id') id: string): Promise<BatchView> {
    return this.control.pause(parseBatchId(id), tenant(req));
  }

  @Post(':id/resume')
  async resume(@Req() req: FastifyRequest, @Param('id') id: string): Promise<BatchView> {
    return this.control.resume(parseBatchId(id), tenant(req));
  }

  @Get(':id/errors')
  async errors(
    @Req() req: FastifyRequest,
    @Param('id') id: string,
    @Query() q: Record<string, unknown>,
  ): Promise<{ items: ErrorView[]; nextCursor: string | null }> {
    const p = parseInput(pageQuerySchema, q);
    return this.query.errors(parseBatchId(id), tenant(req), p.limit, p.cursor);
  }

  /** Every item's output as NDJSON, in item order, streamed. */
  @Get(':id/results')
  async results(@Req() req: FastifyRequest, @Param('id') id: string, @Res() reply: FastifyReply): Promise<void> {
    const bid = parseBatchId(id);
    const who = tenant(req);
    await this.query.row(bid, who); // 404 before the stream starts
    await reply.type(NDJSON).send(Readable.from(this.query.resultLines(bid, who)));
  }

  /** Server-sent progress events until the batch reaches a terminal state. */
  @Get(':id/events')
  async events(@Req() req: FastifyRequest, @Param('id') id: string, @Res() reply: FastifyReply): Promise<void> {
    const bid = parseBatchId(id);
    const who = tenant(req);
    await this.query.row(bid, who);
    const query = this.query;
    async function* stream(): AsyncGenerator<string> {
      let last = '';
      let quiet = 0;
      for (;;) {
        const view = await query.get(bid, who);
        const json = JSON.stringify(view);
        if (json !== last) {
          yield `event: progress\ndata: ${json}\n\n`;
          last = json;
          quiet = 0;
        } else if (++quiet % 30 === 0) {
          yield ': keep-alive\n\n';
        }
        if (TERMINAL.has(view.state)) {
          yield `event: end\ndata: ${JSON.stringify({ id: bid, state: view.state })}\n\n`;
          return;
        }
        await sleep(EVENTS_POLL_MS);
      }
    }
    await reply.header('Cache-Control', 'no-cache').type('text/event-stream').send(Readable.from(stream()));
  }
}
