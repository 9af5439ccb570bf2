import type { IncomingMessage } from 'node:http';

/** How much of a rejected upload is still read (and discarded) after its answer was sent. */
export interface DrainBudget {
  maxBytes: number;
  maxMs: number;
}

export const DEFAULT_DRAIN: DrainBudget = { maxBytes: 8 * 1024 * 1024, maxMs: 2_000 };

/**
 * Called once the answer to a request whose body was not read to its end has been sent (a 413,
 * a bad line, a quota). Reads and discards the rest for a bounded while, then destroys the
 * socket. Closing at once (what `Connection: close` does in Node) resets the connection while
 * the client is still writing, and it may never read the 4xx; draining without bound lets one
 * client keep the process reading a 700 MB body it will never use. A client that finishes its
 * body within the budget keeps its connection.
 */
export function drainThenClose(req: IncomingMessage, budget: DrainBudget = DEFAULT_DRAIN): void {
  if (req.complete || req.destroyed) return;
  let seen = 0;
  const onData = (b: Buffer | string): void => {
    seen += b.length;
    if (seen > budget.maxBytes) close();
  };
  const cleanup = (): void => {
    clearTimeout(timer);
    req.off('data', onData);
    req.off('end', cleanup);
    req.off('close', cleanup);
  };
  const close = (): void => {
    cleanup();
    req.socket.destroy();
  };
  const timer = setTimeout(close, budget.maxMs);
  timer.unref();
  req.on('data', onData);
  req.once('end', cleanup);
  req.once('close', cleanup);
  req.resume();
}
