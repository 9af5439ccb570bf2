import { Inject, Injectable, Logger } from '@nestjs/common';
import { READINESS_CHECKS, type ReadinessCheck } from './health.types';

/** A component's state as the open endpoints show it: no messages, hosts or URLs. */
export type CheckState = 'ok' | 'failing' | 'draining';

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, CheckState>;
}

const CHECK_TIMEOUT_MS = 2_000;
/** How long one round of checks answers every caller: the open endpoint costs at most one round per second. */
export const READINESS_CACHE_MS = 1_000;

function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Readiness for /v2/health/ready and the gRPC health services. The endpoints are open, so a
 * flood of callers must not reach the dependencies: one round of checks runs at a time,
 * concurrent callers share it, and its result answers everyone for READINESS_CACHE_MS. A check
 * whose previous call has not settled (a hung database) is not called again, only reported
 * failing. Failure details go to the log, never to the caller.
 */
@Injectable()
export class HealthService {
  private readonly logger = new Logger('Health');
  private draining = false;
  private cached?: { at: number; checks: Record<string, CheckState> };
  private inFlight?: Promise<Record<string, CheckState>>;
  /** Calls of each check not yet settled (even after their timeout). */
  private readonly unsettled = new Set<string>();
  /** Last logged failure per check, so a lasting outage is logged once, not every second. */
  private readonly lastError = new Map<string, string>();
  private rounds = 0;

  constructor(@Inject(READINESS_CHECKS) private readonly checks: ReadinessCheck[]) {}

  /** Called on shutdown so load balancers stop sending work before the process exits. */
  markDraining(): void {
    this.draining = true;
  }

  /** Rounds of checks run since boot (each round calls every check at most once). */
  checkRounds(): number {
    return this.rounds;
  }

  async readiness(): Promise<ReadinessReport> {
    const checks = { ...(await this.current()) };
    if (this.draining) checks['shutdown'] = 'draining';
    return { ready: !this.draining && Object.values(checks).every((s) => s === 'ok'), checks };
  }

  private current(): Promise<Record<string, CheckState>> {
    if (this.cached && performance.now() - this.cached.at < READINESS_CACHE_MS) return Promise.resolve(this.cached.checks);
    this.inFlight ??= this.round().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async round(): Promise<Record<string, CheckState>> {
    this.rounds++;
    const results = await Promise.all(this.checks.map(async (c) => [c.name, await this.run(c)] as const));
    const checks = Object.fromEntries(results);
    this.cached = { at: performance.now(), checks };
    return checks;
  }

  private async run(c: ReadinessCheck): Promise<CheckState> {
    if (this.unsettled.has(c.name)) return this.failed(c.name, 'the previous check has not answered yet');
    this.unsettled.add(c.name);
    const call = c.check().finally(() => this.unsettled.delete(c.name));
    try {
      await withTimeout(call, CHECK_TIMEOUT_MS);
    } catch (e) {
      return this.failed(c.name, e instanceof Error ? e.message : String(e));
    }
    if (this.lastError.delete(c.name)) this.logger.log(`readiness check ${c.name} ok again`);
    return 'ok';
  }

  private failed(name: string, message: string): CheckState {
    if (this.lastError.get(name) !== message) this.logger.warn(`readiness check ${name} failing: ${message}`);
    this.lastError.set(name, message);
    return 'failing';
  }
}
