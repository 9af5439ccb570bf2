// @ts-check
import { setTimeout as sleep } from 'node:timers/promises';
import cliProgress from 'cli-progress';
import { ENDED } from './client.mjs';

/** @typedef {import('./client.mjs').Batch} Batch @typedef {import('./client.mjs').BatchClient} BatchClient */

/** @param {number | null} s */
function eta(s) {
  if (s === null || !Number.isFinite(s)) return '--';
  if (s < 60) return `${Math.ceil(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** One line per change when stdout is not a terminal (logs, CI, pipes): stable `key=value` fields. @param {Batch} b */
export function progressLine(b) {
  const c = b.request_counts;
  return `${b.id} status=${b.status} done=${c.completed + c.failed}/${c.total} completed=${c.completed} failed=${c.failed} progress=${b.progress}% eta=${eta(b.eta_seconds)}`;
}

/**
 * Polls the batch until it ends, drawing a bar on a TTY (the server's counts and ETA; it knows
 * the rate across workers better than one client could) or printing a line per change.
 * @param {BatchClient} client @param {string} id @param {{ intervalMs: number, tty: boolean, out: NodeJS.WriteStream }} opts
 * @returns {Promise<Batch>}
 */
export async function follow(client, id, { intervalMs, tty, out }) {
  let b = await client.batch(id);
  /** @type {cliProgress.SingleBar | null} */
  let bar = null;
  if (tty) {
    bar = new cliProgress.SingleBar(
      {
        stream: out,
        format: ' {bar} {percentage}% | {value}/{total} | completed {completed} | failed {failed} | ETA {etaText} | {status}',
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 1,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(Math.max(1, b.request_counts.total), 0, payload(b));
  }
  let last = '';
  for (;;) {
    const c = b.request_counts;
    if (bar) bar.update(c.completed + c.failed, payload(b));
    else {
      const line = progressLine(b);
      if (line !== last) out.write(`${line}\n`);
      last = line;
    }
    if (ENDED.has(b.status)) break;
    await sleep(intervalMs);
    b = await client.batch(id);
  }
  bar?.stop();
  return b;
}

/** @param {Batch} b */
function payload(b) {
  return { completed: b.request_counts.completed, failed: b.request_counts.failed, etaText: eta(b.eta_seconds), status: b.status };
}
