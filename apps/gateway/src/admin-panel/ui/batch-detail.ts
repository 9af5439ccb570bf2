import { api } from './api';
import type { BatchHistory, BatchView, ErrorView, HistoryView } from './api-types';
import { actionButtons, costText, etaText, progressBar, rateText, seconds, setActions, setProgress, throughput } from './batches';
import { ChartGrid, COLORS } from './charts';
import { $, cell, cellsRow, emptyRow, h, setAttr, setText, syncRows, time, type ViewContext } from './dom';
import { history, windowOf } from './history';

// One batch's page (#batch/<id>): its state, counters, progress and cost over time, its failed
// chunks, downloads of its results and errors, and pause/resume/cancel.

const ERROR_COLS = ['chunk', 'items', 'state', 'attempts', 'error'] as const;
const STATS: readonly [string, string][] = [
  ['task', 'Task'],
  ['items', 'Items done / failed / total'],
  ['rate', 'Throughput (average)'],
  ['eta', 'ETA'],
  ['cost', 'Device-s owned / borrowed'],
  ['policy', 'Failure policy, attempts'],
  ['created', 'Created'],
  ['started', 'Started'],
  ['finished', 'Finished'],
  ['error', 'Error'],
];

export interface BatchDetail {
  show(id: string): void;
  load(): Promise<void>;
}

export function batchDetailView(root: HTMLElement, ctx: ViewContext): BatchDetail {
  let id = '';
  let current: BatchView | undefined;
  const title = $('.batch-title', root);
  const state = $('.batch-state', root);
  const progress = $('.batch-progress', root);
  progress.append(...progressBar());
  const stats = $('.batch-stats', root);
  for (const [k, label] of STATS) stats.append(h('dt', { text: label }), h('dd', { dataset: { stat: k } }));
  $('.batch-actions', root).append(...actionButtons(() => current, ctx.refresh));
  const resultsBtn = $<HTMLButtonElement>('[data-download="results"]', root);
  const errorsBtn = $<HTMLButtonElement>('[data-download="errors"]', root);
  const note = $('.download-error', root);
  const downloading = (what: Promise<void>): void => {
    setText(note, '');
    what.catch((e: unknown) => setText(note, e instanceof Error ? e.message : String(e)));
  };
  resultsBtn.addEventListener('click', () => downloading(api.download(`/batches/${id}/results`, `batch-${id}-results.ndjson`)));
  errorsBtn.addEventListener('click', () =>
    downloading(
      api.batchErrors(id, 1000).then((page) => {
        const url = URL.createObjectURL(new Blob([JSON.stringify(page.items, null, 2)], { type: 'application/json' }));
        const a = h('a', { href: url, download: `batch-${id}-errors.json` });
        a.click();
        setTimeout(() => URL.revokeObjectURL(url), 10_000);
      }),
    ),
  );
  const errorsBody = $<HTMLTableSectionElement>('.batch-errors tbody', root);
  const charts = new ChartGrid<BatchHistory>($('.batch-charts', root), (b) => [
    {
      key: `batch-progress:${b.id}`,
      title: 'Progress — items settled and items/s',
      series: [
        { label: 'settled', color: COLORS.memory, scale: 'items', fill: true },
        { label: 'items/s', color: COLORS.online, scale: 'rate' },
      ],
      axes: [
        { scale: 'items', label: 'items' },
        { scale: 'rate', label: 'items/s', side: 'right' },
      ],
    },
    {
      key: `batch-cost:${b.id}`,
      title: 'Cost — device-seconds owned vs borrowed, and ETA',
      series: [
        { label: 'owned device-s', color: COLORS.batch, scale: 'devs' },
        { label: 'borrowed device-s', color: COLORS.borrowed, scale: 'devs' },
        { label: 'ETA s', color: COLORS.replicas, scale: 'eta', dash: [6, 4], points: true },
      ],
      axes: [
        { scale: 'devs', label: 'device-s', format: (v) => seconds(v) },
        { scale: 'eta', label: 'ETA s', side: 'right' },
      ],
    },
  ]);

  function drawCharts(hist: HistoryView): void {
    const b = hist.batches.find((x) => x.id === id);
    setText(
      $('.batch-charts-note', root),
      b ? '' : 'No samples of this batch in the last 15 minutes (the gateway samples batches that are unfinished or finished within the window).',
    );
    charts.sync(b ? [b] : [], (x, chart, i) => {
      if (i === 0) chart.update(windowOf(hist), x.t, [x.settled, x.itemsPerS]);
      else chart.update(windowOf(hist), x.t, [x.ownedS, x.borrowedS, x.etaS]);
    });
  }

  function render(b: BatchView, errors: ErrorView[]): void {
    current = b;
    root.dataset.batch = b.id;
    root.dataset.state = b.state;
    setText(title, `Batch ${b.id}`);
    setText(state, b.state);
    setAttr(state, 'class', `batch-state state-${b.state}`);
    setProgress(progress, b);
    const c = b.counts;
    const stat = (k: string, v: string): void => setText($(`[data-stat="${k}"]`, stats), v);
    stat('task', `${b.task}${b.model ? ` · ${b.model}` : ''} · reducer ${b.reducer} · chunks of ${b.chunkSize}`);
    stat('items', `${c.itemsDone.toLocaleString()} / ${c.itemsFailed.toLocaleString()} / ${c.items.toLocaleString()}`);
    stat('rate', rateText(throughput(b, Date.now())));
    stat('eta', etaText(b));
    stat('cost', costText(b));
    stat('policy', `${b.failurePolicy}, up to ${b.maxAttempts}`);
    stat('created', time(b.createdAt));
    stat('started', time(b.startedAt));
    stat('finished', time(b.finishedAt));
    stat('error', b.error ?? '—');
    setActions(root, b);
    resultsBtn.disabled = c.chunksDone === 0;
    errorsBtn.disabled = errors.length === 0;
    if (errors.length === 0) errorsBody.replaceChildren(emptyRow(errorsBody, ERROR_COLS.length, 'No failed chunks.'));
    else {
      errorsBody.querySelector('tr.empty')?.remove();
      syncRows<ErrorView, HTMLTableRowElement>(
        errorsBody,
        errors,
        (e) => String(e.chunk),
        () => cellsRow(ERROR_COLS),
        (tr, e) => {
          setText(cell(tr, 'chunk'), e.chunk);
          setText(cell(tr, 'items'), `${e.firstItem}–${e.lastItem}`);
          setText(cell(tr, 'state'), e.state);
          setText(cell(tr, 'attempts'), e.attempts);
          setText(cell(tr, 'error'), e.error);
          setAttr(cell(tr, 'error'), 'title', e.error);
        },
      );
    }
  }

  return {
    show(next: string) {
      if (next === id) return;
      id = next;
      current = undefined;
      setText(title, `Batch ${id}`);
      setText(note, '');
      errorsBody.replaceChildren();
    },
    async load() {
      const [b, errors, hist] = await Promise.all([api.batch(id), api.batchErrors(id, 100), history()]);
      if (b.id !== id) return; // the operator moved on meanwhile
      render(b, errors.items);
      drawCharts(hist);
    },
  };
}
