import { api } from './api.js';
import { confirmDialog } from './dialog.js';
import { age, emptyRow, h, setAttr, setText, syncRows } from './dom.js';

// Batches (proxied from the batch app): progress, throughput, ETA, device cost, errors; pause/resume/cancel.

const COLS = ['batch', 'state', 'progress', 'items', 'rate', 'eta', 'cost', 'errors', 'actions'];

/** Unit-seconds as the cost column shows them (owned / borrowed share). */
function seconds(s) {
  return s >= 3600 ? `${(s / 3600).toFixed(1)}h` : s >= 60 ? `${(s / 60).toFixed(1)}m` : `${s.toFixed(1)}s`;
}
const ACTIVE = new Set(['queued', 'running', 'paused']);
const ACTIONS = [
  ['pause', 'Pause', (b) => b.state === 'queued' || b.state === 'running'],
  ['resume', 'Resume', (b) => b.state === 'paused'],
  ['cancel', 'Cancel', (b) => ACTIVE.has(b.state)],
];

/** Items settled per second since the batch started (until it finished). */
function throughput(b, now) {
  if (!b.startedAt) return null;
  const end = b.finishedAt ? Date.parse(b.finishedAt) : now;
  const s = (end - Date.parse(b.startedAt)) / 1000;
  const settled = b.counts.itemsDone + b.counts.itemsFailed;
  return s > 0 ? settled / s : null;
}

function control(b, act, refresh) {
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
      await api('POST', `/batches/${b.id}/${act}`);
      await refresh();
    },
  });
}

export function batchesView(root, { refresh }) {
  const tbody = root.querySelector('tbody');
  return async function load() {
    const { items } = await api('GET', '/batches?limit=50');
    const now = Date.now();
    if (items.length === 0) {
      tbody.replaceChildren(emptyRow(tbody, COLS.length, 'No batches submitted yet.'));
      return;
    }
    tbody.querySelector('tr.empty')?.remove();
    syncRows(
      tbody,
      items,
      (b) => b.id,
      () => {
        const tr = h('tr', {}, ...COLS.map((c) => h('td', { class: `col-${c}` })));
        tr.querySelector('.col-batch').append(h('div', { class: 'batch-cell' }, h('code', { class: 'batch-id' }), h('small', { class: 'batch-task' })));
        tr.querySelector('.col-progress').append(
          h('div', { class: 'progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100 }, h('span', { class: 'progress-done' }), h('span', { class: 'progress-failed' })),
          h('small', { class: 'progress-text' }),
        );
        for (const [act, label] of ACTIONS) {
          const btn = h('button', { type: 'button', class: act === 'cancel' ? 'danger-outline' : 'secondary', text: label, dataset: { action: act } });
          btn.addEventListener('click', () => control(tr.batch, act, refresh));
          tr.querySelector('.col-actions').append(btn);
        }
        return tr;
      },
      (tr, b) => {
        tr.batch = b;
        tr.dataset.batch = b.id;
        tr.dataset.state = b.state;
        const cell = (c) => tr.querySelector(`.col-${c}`);
        setText(cell('batch').querySelector('.batch-id'), b.id.slice(0, 8));
        setAttr(cell('batch').querySelector('.batch-id'), 'title', b.id);
        setText(cell('batch').querySelector('.batch-task'), `${b.task}${b.model ? ` · ${b.model}` : ''} · ${b.reducer}`);
        const st = cell('state');
        setText(st, b.state);
        setAttr(st, 'class', `col-state state-${b.state}`);
        const c = b.counts;
        const bar = cell('progress').querySelector('.progress');
        const done = c.items ? c.itemsDone / c.items : 1;
        const failed = c.items ? c.itemsFailed / c.items : 0;
        bar.querySelector('.progress-done').style.width = `${done * 100}%`;
        bar.querySelector('.progress-failed').style.width = `${failed * 100}%`;
        setAttr(bar, 'aria-valuenow', b.progress);
        setAttr(bar, 'aria-label', `batch ${b.id.slice(0, 8)} ${b.progress}% settled`);
        setText(cell('progress').querySelector('.progress-text'), `${b.progress}% · chunks ${c.chunksDone}/${c.chunks}`);
        setText(cell('items'), `${c.itemsDone.toLocaleString()} / ${c.items.toLocaleString()}`);
        const r = throughput(b, now);
        setText(cell('rate'), r === null ? '—' : `${r >= 10_000 ? `${(r / 1000).toFixed(1)}k` : r >= 100 ? Math.round(r).toLocaleString() : r.toFixed(1)} items/s`);
        setText(cell('eta'), b.state === 'succeeded' ? 'done' : b.etaSeconds === null ? '—' : age(b.etaSeconds * 1000));
        const d = b.deviceSeconds ?? { owned: 0, borrowed: 0 };
        setText(cell('cost'), d.owned + d.borrowed > 0 ? `${seconds(d.owned)} / ${seconds(d.borrowed)}` : '—');
        setAttr(cell('cost'), 'title', `device-seconds: ${d.owned} owned / ${d.borrowed} borrowed`);
        setText(cell('errors'), c.itemsFailed || b.error ? `${c.itemsFailed} failed${b.error ? ` — ${b.error}` : ''}` : '—');
        setAttr(cell('errors'), 'title', b.error ?? '');
        for (const [act, , allowed] of ACTIONS) tr.querySelector(`[data-action="${act}"]`).disabled = !allowed(b);
      },
    );
  };
}
