import { api } from './api';
import type { HistoryView } from './api-types';

// The gateway samples every few seconds; views polling faster share one fetch per sample.

let last: { at: number; view: Promise<HistoryView> } | null = null;

export function history(): Promise<HistoryView> {
  const now = Date.now();
  if (last && now - last.at < 2_000) return last.view;
  const view = api.get('/history', { window: 900 });
  last = { at: now, view };
  view.catch(() => {
    if (last?.view === view) last = null;
  });
  return view;
}

/**
 * The charts' time axis: the last 15 minutes, or from the first sample when the gateway has run
 * for less (a fresh gateway's charts are not a sliver at the right edge).
 */
export function windowOf(h: HistoryView): { from: number; to: number } {
  let first = h.now;
  for (const e of [...h.devices, ...h.models, ...h.batches]) if (e.t.length > 0 && e.t[0]! < first) first = e.t[0]!;
  return { from: Math.max(h.now - h.windowS, Math.min(first, h.now - 60)), to: h.now };
}
