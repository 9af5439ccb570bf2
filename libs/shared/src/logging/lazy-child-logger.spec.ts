import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { lazyChildLogger } from './lazy-child-logger';

function capture(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info', base: { app: 't' } }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

describe('lazyChildLogger', () => {
  it('makes the pino child on the first line, with its bindings, and only once', () => {
    const { logger, lines } = capture();
    let children = 0;
    const parent = { ...logger, level: logger.level, child: (b: pino.Bindings, o?: pino.ChildLoggerOptions) => (children++, logger.child(b, o)) };
    const log = lazyChildLogger(parent as unknown as pino.Logger, { reqId: 'r-1' }, {});
    expect(children).toBe(0);
    log.info({ a: 1 }, 'first');
    log.warn('second %s', 'x');
    log.debug('below the level');
    expect(children).toBe(1);
    expect(lines.map((l) => [l.reqId, l.msg, l.app, l.a])).toEqual([
      ['r-1', 'first', 't', 1],
      ['r-1', 'second x', 't', undefined],
    ]);
  });

  it('a level set before first use applies to the child it makes', () => {
    const { logger, lines } = capture();
    const log = lazyChildLogger(logger, { reqId: 'r-2' }, {});
    expect(log.level).toBe('info');
    log.level = 'debug';
    log.debug('now visible');
    expect(log.level).toBe('debug');
    expect(lines.map((l) => l.msg)).toEqual(['now visible']);
    expect(log.child({ k: 'v' }).level).toBe('debug');
  });
});
