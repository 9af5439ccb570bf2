import { Body, Controller, Delete, Get, HttpCode, Param, Post, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { ApiKeyService, principalOf, type ApiKeyScope, type ApiKeyView, type Principal } from '@tandem/auth';
import { DomainException } from '@tandem/shared';
import { adminActor } from './admin-actor';

interface CreateKeyBody {
  name: string;
  scopes: ApiKeyScope[];
}

function parseCreate(body: unknown): CreateKeyBody {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw DomainException.invalid('body must be a JSON object {"name", "scopes"}');
  const b = body as Record<string, unknown>;
  const extra = Object.keys(b).filter((k) => k !== 'name' && k !== 'scopes');
  if (extra.length) throw DomainException.invalid(`unknown field(s): ${extra.join(', ')}`);
  if (typeof b.name !== 'string') throw DomainException.invalid('name must be a string');
  if (!Array.isArray(b.scopes) || !b.scopes.every((s) => typeof s === 'string')) throw DomainException.invalid('scopes must be an array of strings');
  return { name: b.name, scopes: b.scopes as ApiKeyScope[] };
}

/** `/admin/api/keys`: create (the secret is in this response only), list (never secrets), revoke. */
@Controller('admin/api')
export class ApiKeysController {
  constructor(private readonly keys: ApiKeyService) {}

  @Get('whoami')
  whoami(@Req() req: FastifyRequest): Pick<Principal, 'id' | 'name' | 'scopes'> {
    const p = principalOf(req);
    return { id: p.id, name: p.name, scopes: p.scopes };
  }

  @Get('keys')
  async list(): Promise<{ keys: ApiKeyView[] }> {
    return { keys: await this.keys.list() };
  }

  @Post('keys')
  @HttpCode(201)
  create(@Body() body: unknown, @Req() req: FastifyRequest): Promise<{ key: string } & ApiKeyView> {
    const b = parseCreate(body);
    return this.keys.create(b.name, b.scopes, adminActor(req));
  }

  @Delete('keys/:id')
  @HttpCode(204)
  async revoke(@Param('id') id: string, @Req() req: FastifyRequest): Promise<void> {
    await this.keys.revoke(id, adminActor(req));
  }
}
