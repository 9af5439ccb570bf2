import { Body, Controller, Get, Param, Put, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { parseInput } from '@tandem/shared';
import { ModelsAdminService, type ModelView } from '../admin-panel/models-admin.service';
import { adminActor } from './admin-actor';

const limitsBody = z
  .object({
    min_replicas: z.number().int('min_replicas must be an integer').min(0, 'min_replicas must be ≥ 0').max(64, 'min_replicas must be ≤ 64'),
    max_replicas: z.number().int('max_replicas must be an integer').min(1, 'max_replicas must be ≥ 1').max(64, 'max_replicas must be ≤ 64'),
  })
  .strict()
  .refine((b) => b.min_replicas <= b.max_replicas, { message: 'min_replicas must be ≤ max_replicas' });

const modelName = z.string().regex(/^[A-Za-z0-9_.-]{1,200}$/, 'not a model name');

/** `/admin/api/models`: replicas, load and latency per model; operator min/max replicas. */
@Controller('admin/api/models')
export class ModelsAdminController {
  constructor(private readonly models: ModelsAdminService) {}

  @Get()
  async list(): Promise<{ models: ModelView[] }> {
    return { models: await this.models.list() };
  }

  @Put(':model/limits')
  limits(@Param('model') model: string, @Body() body: unknown, @Req() req: FastifyRequest): Promise<ModelView> {
    const b = parseInput(limitsBody, body, 'limits');
    return this.models.setLimits(parseInput(modelName, model, 'model'), b.min_replicas, b.max_replicas, adminActor(req));
  }
}
