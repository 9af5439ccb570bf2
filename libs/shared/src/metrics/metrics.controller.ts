import { Controller, Get, Header, Module, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { metricsText } from './metrics';

/** `GET /metrics`: the Prometheus scrape of the whole default registry (every part's `tandem_*` series). */
@Controller('metrics')
export class MetricsController {
  @Get()
  @Header('Cache-Control', 'no-store')
  async scrape(@Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    const { contentType, body } = await metricsText();
    void reply.type(contentType);
    return body;
  }
}

/** Both apps' /metrics (the auth route table decides who may scrape). */
@Module({ controllers: [MetricsController] })
export class MetricsModule {}
