import { api } from './api.js';
import { emptyRow, h, setText, syncRows, time } from './dom.js';

// Audit log: who did what, when (newest first).

const COLS = ['at', 'actor', 'action', 'target', 'details'];

export function auditView(root) {
  const tbody = root.querySelector('tbody');
  return async function load() {
    const { entries } = await api('GET', '/audit?limit=100');
    if (entries.length === 0) {
      tbody.replaceChildren(emptyRow(tbody, COLS.length, 'Nothing audited yet.'));
      return;
    }
    tbody.querySelector('tr.empty')?.remove();
    syncRows(
      tbody,
      entries,
      (e) => e.id,
      () => h('tr', {}, ...COLS.map((c) => h('td', { class: `col-${c}` }))),
      (tr, e) => {
        const cell = (c) => tr.querySelector(`.col-${c}`);
        tr.dataset.action = e.action;
        setText(cell('at'), time(e.at));
        setText(cell('actor'), e.actor);
        setText(cell('action'), e.action);
        setText(cell('target'), e.target);
        setText(cell('details'), JSON.stringify(e.details));
      },
    );
  };
}
