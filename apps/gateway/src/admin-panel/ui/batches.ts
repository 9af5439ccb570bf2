import { api } from './api';
import type { BatchView } from './api-types';
import { confirmDialog } from './dialog';
import { $, age, cell, cellsRow, emptyRow, h, setAttr, setText, syncRows, type Loader, type ViewContext } from './dom';

// Batches (proxied from the batch app): progress, throughput, ETA, device cost, errors;
// pause/resume/cancel; the id opens the batch's own page.

const COLS = ['batch', 'state', 'progress', 'items', 'rate', 'eta', 'cost', 'errors', 'actions'] as const;
export type BatchAction = 'pause' | 'resume' | 'cancel';

/** Unit-seconds as the cost column shows them (owned / borrowed share). */
export function seconds(s: number): string {
  return s >= 3600 ? `${(s / 3600).toFixed(1)}h` : s >= 60 ? `${(s / 60).toFixed(1)}m` : `${s.toFixed(1)}s`;
}
const ACTIVE = new Set(['queued', 'running', 'paused']);
export const ACTIONS: readonly [BatchAction, string, (b: BatchView) => boolean][] = [
  ['pause', 'Pause', (b) => b.state === 'queued' || b.state === 'running'],
  ['resume', 'Resume', (b) => b.state === 'paused'],
  ['cancel', 'Cancel', (b) => ACTIVE.has(b.state)],
];

/** Items settled per second since the batch started (until it finished). */
export function throughput(b: BatchView, now: number): number | null {
  if (!b.startedAt) return null;
  const end = b.finishedAt ? Date.parse(b.finishedAt) : now;
  const s = (end - Date.parse(b.startedAt)) / 1000;
  const settled = b.counts.itemsDone + b.counts.itemsFailed;
  return s > 0 ? settled / s : null;
}

export const rateText = (r: number | null): string =>
  r === null ? '—' : `${r >= 10_000 ? `${(r / 1000).toFixed(1)}k` : r >= 100 ? Math.round(r).toLocaleString() : r.toFixed(1)} items/s`;
export const etaText = (b: BatchView): string => (b.state === 'succeeded' ? 'done' : b.etaSeconds === null ? '—' : age(b.etaSeconds * 1000));
export const costText = (b: BatchView): string => {
  const d = b.deviceSeconds;
  return d.owned + d.borrowed > 0 ? `${seconds(d.owned)} / ${seconds(d.borrowed)}` : '—';
};

export function control(b: BatchView, act: BatchAction, refresh: () => Promise<void>): Promise<boolean> {
  const verbs = { pause: 'Pause', resume: 'Resume', cancel: 'Cancel' };
  const what = {
    pause: 'Workers stop taking its chunks; chunks already running finish.',
    resume: 'Its remaining chunks are queued again.',
    cancel: 'Pending chunks are dropped and running ones aborted. This cannot be undone.',
  };
  return confirmDialog({
    title: `${verbs[act]} batch ${b.id.slice(0, 8)}`,
    message: `${verbs[act]} batch ${b.id} (${b.task}, ${b.counts.items} items, ${b.progress}% done)? ${what[act]}`,
    confirmLabel: `${verbs[act]} batch`,
    danger: act === 'cancel',
    async apply() {
      await api.controlBatch(b.id, act);
      await refresh();
    },
  });
}

/** The progress bar (done in green, failed in red) and its text. */
export function progressBar(): HTMLElement[] {
  return [
    h(
      'div',
      { class: 'progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100 },
      h('span', { class: 'progress-done' }),
      h('span', { class: 'progress-failed' }),
    ),
    h('small', { class: 'progress-text' }),
  ];
}

export function setProgress(root: Element, b: BatchView): void {
  const c = b.counts;
  const bar = $('.progress', root);
  $('.progress-done', bar).style.width = `${(c.items ? c.itemsDone / c.items : 1) * 100}%`;
  $('.progress-failed', bar).style.width = `${(c.items ? c.itemsFailed / c.items : 0) * 100}%`;
  setAttr(bar, 'aria-valuenow', b.progress);
  setAttr(bar, 'aria-label', `batch ${b.id.slice(0, 8)} ${b.progress}% settled`);
  setText($('.progress-text', root), `${b.progress}% · chunks ${c.chunksDone}/${c.chunks}`);
}

export function actionButtons(current: () => BatchView | undefined, refresh: () => Promise<void>): HTMLButtonElement[] {
  return ACTIONS.map(([act, label]) => {
    const btn = h('button', { type: 'button', class: act === 'cancel' ? 'danger-outline' : 'secondary', text: label, dataset: { action: act } });
    btn.addEventListener('click', () => {
      const b = current();
      if (b) void control(b, act, refresh);
    });
    return btn;
  });
}

export function setActions(root: Element, b: BatchView): void {
  for (const [act, , allowed] of ACTIONS) $<HTMLButtonElement>(`[data-action="${act}"]`, root).disabled = !allowed(b);
}

interface BatchRow extends HTMLTableRowElement {
  batch?: BatchView;
}

export function batchesView(root: HTMLElement, ctx: ViewContext): Loader {
  const tbody = $<HTMLTableSectionElement>('tbody', root);
  return async function load() {
    const { items } = await api.get('/batches', { limit: 50 });
    const now = Date.now();
    if (items.length === 0) {
      tbody.replaceChildren(emptyRow(tbody, COLS.length, 'No batches submitted yet.'));
      return;
    }
    tbody.querySelector('tr.empty')?.remove();
    syncRows<BatchView, BatchRow>(
      tbody,
      items,
      (b) => b.id,
      () => {
        const tr: BatchRow = cellsRow(COLS);
        cell(tr, 'batch').append(h('div', { class: 'batch-cell' }, h('a', { class: 'batch-id' }), h('small', { class: 'batch-task' })));
        cell(tr, 'progress').append(...progressBar());
        cell(tr, 'actions').append(...actionButtons(() => tr.batch, ctx.refresh));
        return tr;
      },
      (tr, b) => {
        tr.batch = b;
        tr.dataset.batch = b.id;
        tr.dataset.state = b.state;
        const link = $('.batch-id', tr);
        setText(link, b.id.slice(0, 8));
        setAttr(link, 'title', `${b.id}: open the batch's page`);
        setAttr(link, 'href', `#batch/${b.id}`);
        setText($('.batch-task', tr), `${b.task}${b.model ? ` · ${b.model}` : ''} · ${b.reducer}`);
        const st = cell(tr, 'state');
        setText(st, b.state);
        setAttr(st, 'class', `col-state state-${b.state}`);
        setProgress(cell(tr, 'progress'), b);
        setText(cell(tr, 'items'), `${b.counts.itemsDone.toLocaleString()} / ${b.counts.items.toLocaleString()}`);
        setText(cell(tr, 'rate'), rateText(throughput(b, now)));
        setText(cell(tr, 'eta'), etaText(b));
        setText(cell(tr, 'cost'), costText(b));
        setAttr(cell(tr, 'cost'), 'title', `device-seconds: ${b.deviceSeconds.owned} owned / ${b.deviceSeconds.borrowed} borrowed`);
        setText(cell(tr, 'errors'), b.counts.itemsFailed || b.error ? `${b.counts.itemsFailed} failed${b.error ? ` — ${b.error}` : ''}` : '—');
        setAttr(cell(tr, 'errors'), 'title', b.error ?? '');
        setActions(tr, b);
      },
    );
  };
}
