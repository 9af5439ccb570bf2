import { api } from './api';
import type { AuditPage } from './api-types';
import { $, cell, cellsRow, emptyRow, setText, syncRows, time, type Loader } from './dom';

// Audit log: who did what, when (newest first).

const COLS = ['at', 'actor', 'action', 'target', 'details'] as const;

export function auditView(root: HTMLElement): Loader {
  const tbody = $<HTMLTableSectionElement>('tbody', root);
  return async function load() {
    const { entries } = await api.get('/audit', { limit: 100 });
    if (entries.length === 0) {
      tbody.replaceChildren(emptyRow(tbody, COLS.length, 'Nothing audited yet.'));
      return;
    }
    tbody.querySelector('tr.empty')?.remove();
    syncRows<AuditPage['entries'][number], HTMLTableRowElement>(
      tbody,
      entries,
      (e) => e.id,
      () => cellsRow(COLS),
      (tr, e) => {
        tr.dataset.action = e.action;
        setText(cell(tr, 'at'), time(e.at));
        setText(cell(tr, 'actor'), e.actor);
        setText(cell(tr, 'action'), e.action);
        setText(cell(tr, 'target'), e.target);
        setText(cell(tr, 'details'), JSON.stringify(e.details));
      },
    );
  };
}
