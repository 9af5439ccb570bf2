import { Body, Controller, HttpCode, Param, Post, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { DomainException } from '@tandem/shared';
import { adminActor } from '../admin/admin-actor';
import { ModelControlService, type RepositoryIndexEntry } from './model-control.service';

function readyFlag(body: unknown): boolean {
  if (body === undefined || body === null || body === '') return false;
  if (typeof body !== 'object' || Array.isArray(body)) throw DomainException.invalid('body must be a JSON object');
  const ready = (body as { ready?: unknown }).ready;
  if (ready !== undefined && typeof ready !== 'boolean') throw DomainException.invalid('ready must be a boolean');
  return ready === true;
}

/** Triton/KServe model repository extension: `/v2/repository/...` (admin scope). */
@Controller('v2/repository')
export class ModelControlController {
  constructor(private readonly control: ModelControlService) {}

  @Post('index')
  @HttpCode(200)
  index(@Body() body: unknown): RepositoryIndexEntry[] {
    return this.control.index(readyFlag(body));
  }

  @Post('models/:model/load')
  @HttpCode(200)
  async load(@Param('model') model: string, @Req() req: FastifyRequest): Promise<Record<string, never>> {
    await this.control.load(model, adminActor(req));
    return {};
  }

  @Post('models/:model/unload')
  @HttpCode(200)
  async unload(@Param('model') model: string, @Req() req: FastifyRequest): Promise<Record<string, never>> {
    await this.control.unload(model, adminActor(req));
    return {};
  }
}
