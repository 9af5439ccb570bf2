import type { Readable } from 'node:stream';
import { Controller, Delete, Get, HttpCode, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { principalOf } from '@tandem/auth';
import { DomainException } from '@tandem/shared';
import { parseInput } from '@tandem/shared';
import { tenantOf } from '../batches/batch-tenant';
import { bodyTooLarge, NDJSON } from '../batches/ndjson-body.registrar';
import { chunksOf } from '../batches/stream-chunks';
import type { Tenant } from '../batches/batch.types';
import { BATCH_CONFIG, type BatchConfig } from '../config/batch.config';
import { parseRange, type ContentRange } from './byte-range';
import { cleanFilename, fileListSchema, parseFileId, uploadFieldsSchema } from './file.dto';
import { FileService } from './file.service';
import type { FileDeleted, FileList, FileView } from './file.types';
import { JSONL, MULTIPART_OVERHEAD_BYTES } from './files-body.registrar';
import { multipartUpload } from './multipart-upload';

/** Every route acts for the key's principal: its own files only, unless it is an admin. */
const tenant = (req: FastifyRequest): Tenant => tenantOf(principalOf(req));
const mediaType = (req: FastifyRequest): string => (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();

/** OpenAI's Files API (`/v1/files`), for purpose=batch JSONL files. */
@Controller('v1/files')
export class FilesController {
  constructor(
    @Inject(BATCH_CONFIG) private readonly cfg: BatchConfig,
    private readonly files: FileService,
  ) {}

  /**
   * multipart/form-data with `purpose=batch` and `file` (what OpenAI clients send), or the JSONL
   * itself as the body (`application/jsonl` or `application/x-ndjson`) with `?purpose=batch`.
   * 200, as OpenAI answers (not Tandem's usual 201 + Location).
   */
  @Post()
  @HttpCode(200)
  async create(@Req() req: FastifyRequest, @Query() query: Record<string, unknown>): Promise<FileView> {
    const max = this.cfg.files.limitBytes;
    const type = mediaType(req);
    const declared = Number(req.headers['content-length']);
    if (type === 'multipart/form-data') {
      if (declared > max + MULTIPART_OVERHEAD_BYTES) throw bodyTooLarge(max);
      return multipartUpload(req, tenant(req), this.files, { fileBytes: max, bodyBytes: max + MULTIPART_OVERHEAD_BYTES });
    }
    if (type !== JSONL && type !== NDJSON) {
      throw DomainException.invalid(`send multipart/form-data (fields 'purpose', 'file'), or the JSONL as ${JSONL} with ?purpose=batch`);
    }
    if (declared > max) throw bodyTooLarge(max);
    // Checked before any byte is read: a wrong purpose stores nothing.
    const fields = parseInput(uploadFieldsSchema, query);
    const received = await this.files.receive(tenant(req), cleanFilename(fields.filename), chunksOf(req.body as Readable));
    try {
      return await this.files.complete(received, fields);
    } catch (e) {
      await this.files.abandon(received).catch(() => undefined);
      throw e;
    }
  }

  @Get()
  async list(@Req() req: FastifyRequest, @Query() q: Record<string, unknown>): Promise<FileList> {
    return this.files.list(parseInput(fileListSchema, q), tenant(req));
  }

  @Get(':id')
  async get(@Req() req: FastifyRequest, @Param('id') id: string): Promise<FileView> {
    return this.files.get(parseFileId(id), tenant(req));
  }

  /** The file's bytes, streamed from the blob store; one `Range` is a 206 read as a byte range of the blob. */
  @Get(':id/content')
  async content(@Req() req: FastifyRequest, @Param('id') id: string, @Res() reply: FastifyReply): Promise<void> {
    let range: ContentRange | null | 'unsatisfiable' = null;
    const { file, stream } = await this.files.content(parseFileId(id), tenant(req), (size) => {
      range = parseRange(req.headers.range, size);
      return range && range !== 'unsatisfiable' ? range : undefined;
    });
    void reply
      .header('accept-ranges', 'bytes')
      .header('content-disposition', `attachment; filename="${encodeURIComponent(file.filename)}"`)
      .type('application/octet-stream');
    const r = range as ContentRange | null | 'unsatisfiable';
    if (r === 'unsatisfiable') {
      stream.destroy();
      await reply
        .status(416)
        .header('content-range', `bytes */${file.bytes}`)
        .type('application/json')
        .send({ error: `range not satisfiable: the file has ${file.bytes} bytes` });
      return;
    }
    if (r) void reply.status(206).header('content-range', `bytes ${r.start}-${r.end - 1}/${file.bytes}`);
    await reply.header('content-length', String(r ? r.end - r.start : file.bytes)).send(stream);
  }

  @Delete(':id')
  async remove(@Req() req: FastifyRequest, @Param('id') id: string): Promise<FileDeleted> {
    return this.files.remove(parseFileId(id), tenant(req));
  }
}
