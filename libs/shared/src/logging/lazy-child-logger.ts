import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions } from 'pino';

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/**
 * Fastify's per-request logger (`request.log`), made into a pino child on first use. pino's
 * `child()` serializes its bindings when it is created: 1.6 % of the gateway's main thread on
 * small requests, which almost never log.
 */
class LazyChildLogger implements FastifyBaseLogger {
  private made?: FastifyBaseLogger;
  private levelOverride?: string;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly opts: ChildLoggerOptions,
  ) {}

  private real(): FastifyBaseLogger {
    if (!this.made) {
      this.made = this.parent.child(this.bindings, this.opts);
      if (this.levelOverride !== undefined) this.made.level = this.levelOverride;
    }
    return this.made;
  }

  get level(): string {
    return this.made?.level ?? this.levelOverride ?? this.opts.level ?? this.parent.level;
  }

  set level(l: string) {
    if (this.made) this.made.level = l;
    else this.levelOverride = l;
  }

  // Prototype methods, not per-instance closures: one small object per request is the point.
  fatal(...args: unknown[]): void {
    this.log('fatal', args);
  }
  error(...args: unknown[]): void {
    this.log('error', args);
  }
  warn(...args: unknown[]): void {
    this.log('warn', args);
  }
  info(...args: unknown[]): void {
    this.log('info', args);
  }
  debug(...args: unknown[]): void {
    this.log('debug', args);
  }
  trace(...args: unknown[]): void {
    this.log('trace', args);
  }
  silent(...args: unknown[]): void {
    this.log('silent', args);
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.real().child(bindings, options);
  }

  private log(level: Level, args: unknown[]): void {
    (this.real()[level] as (...a: unknown[]) => void)(...args);
  }
}

/** For Fastify's `childLoggerFactory` option. */
export function lazyChildLogger(parent: FastifyBaseLogger, bindings: Bindings, opts: ChildLoggerOptions): FastifyBaseLogger {
  return new LazyChildLogger(parent, bindings, opts);
}
