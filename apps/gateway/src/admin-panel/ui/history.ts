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

/** The chart window: the answer's last 15 minutes. */
export const windowOf = (h: HistoryView): { from: number; to: number } => ({ from: h.now - h.windowS, to: h.now });
