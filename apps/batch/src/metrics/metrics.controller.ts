import { Controller, Get, Header, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { BatchMetrics } from './batch.metrics';

@Controller()
export class MetricsController {
  constructor(private readonly metrics: BatchMetrics) {}

  @Get('metrics')
  @Header('Cache-Control', 'no-store')
  async metricsText(@Res() reply: FastifyReply): Promise<void> {
    const { contentType, body } = await this.metrics.text();
    await reply.type(contentType).send(body);
  }
}
