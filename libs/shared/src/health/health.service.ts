import { Inject, Injectable } from '@nestjs/common';
import { READINESS_CHECKS, type ReadinessCheck } from './health.types';

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, 'ok' | string>;
}

const CHECK_TIMEOUT_MS = 2_000;

function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

@Injectable()
export class HealthService {
  private draining = false;

  constructor(@Inject(READINESS_CHECKS) private readonly checks: ReadinessCheck[]) {}

  /** Called on shutdown so load balancers stop sending work before the process exits. */
  markDraining(): void {
    this.draining = true;
  }

  async readiness(): Promise<ReadinessReport> {
    const results = await Promise.all(
      this.checks.map(async (c) => {
        try {
          await withTimeout(c.check(), CHECK_TIMEOUT_MS);
          return [c.name, 'ok'] as const;
        } catch (e) {
          return [c.name, e instanceof Error ? e.message : String(e)] as const;
        }
      }),
    );
    const checks = Object.fromEntries(results);
    if (this.draining) checks['shutdown'] = 'draining';
    return { ready: !this.draining && results.every(([, r]) => r === 'ok'), checks };
  }
}
