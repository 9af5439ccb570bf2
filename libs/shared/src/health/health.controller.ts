import { Controller, Get, HttpCode, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { HealthService } from './health.service';

/**
 * OIP v2 health (open endpoints): 200 means true; ready answers 503 naming each failing
 * component, never why (the reason, with hosts and URLs, is in the log). Answers come from
 * HealthService's shared, cached round of checks.
 */
@Controller('v2/health')
export class HealthController {
  constructor(private readonly health: HealthService) {}

  @Get('live')
  @HttpCode(200)
  live(): { live: true } {
    return { live: true };
  }

  @Get('ready')
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<object> {
    const report = await this.health.readiness();
    if (report.ready) return { ready: true, checks: report.checks };
    const failing = Object.entries(report.checks)
      .filter(([, v]) => v !== 'ok')
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    void reply.status(503);
    return { ready: false, error: `not ready: ${failing}`, checks: report.checks };
  }
}
