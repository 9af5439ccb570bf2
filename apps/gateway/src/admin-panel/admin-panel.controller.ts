import { Controller, Get, Param, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { DomainException } from '@tandem/shared';
import { PANEL_CSP, PanelAssets } from './panel-assets';

/** `GET /admin` and `GET /admin/<file>`: the panel's static shell (public; it holds no data). */
@Controller('admin')
export class AdminPanelController {
  private readonly assets = new PanelAssets();

  @Get()
  index(@Res() reply: FastifyReply): Promise<void> {
    return this.send('index.html', reply);
  }

  @Get(':file')
  file(@Param('file') file: string, @Res() reply: FastifyReply): Promise<void> {
    return this.send(file, reply);
  }

  private async send(name: string, reply: FastifyReply): Promise<void> {
    const asset = this.assets.get(name);
    if (!asset) throw DomainException.notFound(`no panel file "${name.slice(0, 64)}"`);
    const { body, contentType } = await asset;
    await reply
      .header('Content-Type', contentType)
      .header('Content-Security-Policy', PANEL_CSP)
      .header('X-Content-Type-Options', 'nosniff')
      .header('X-Frame-Options', 'DENY')
      .header('Referrer-Policy', 'no-referrer')
      .header('Cache-Control', 'no-cache')
      .send(body);
  }
}
