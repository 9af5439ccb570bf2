import { Controller, Get, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { metricsText } from '@tandem/shared';

/** Prometheus scrape endpoint: the whole default registry (every part's `tandem_*` metrics). */
@Controller('metrics')
export class MetricsController {
  @Get()
  async metrics(@Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    const { contentType, body } = await metricsText();
    void reply.type(contentType);
    return body;
  }
}
