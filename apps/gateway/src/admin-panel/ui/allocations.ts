import { api } from './api';
import type { AllocationView } from './api-types';
import { $, age, cell, cellsRow, clock, emptyRow, mib, pct, setAttr, setText, syncRows, type Loader } from './dom';

// Allocations: who holds which share of which device, owned or borrowed, and for how long.

const COLS = ['holder', 'kind', 'device', 'share', 'memory', 'owned', 'state', 'age', 'expires'] as const;

export function allocationsView(root: HTMLElement): Loader {
  const tbody = $<HTMLTableSectionElement>('tbody', root);
  return async function load() {
    const { allocations } = await api.get('/allocations', { limit: 500 });
    const now = Date.now();
    if (allocations.length === 0) {
      tbody.replaceChildren(emptyRow(tbody, COLS.length, 'No allocations: nothing holds a share of any device right now.'));
      return;
    }
    tbody.querySelector('tr.empty')?.remove();
    syncRows<AllocationView, HTMLTableRowElement>(
      tbody,
      allocations,
      (a) => a.id,
      () => cellsRow(COLS),
      (tr, a) => {
        setAttr(tr, 'data-holder', a.holder);
        setText(cell(tr, 'holder'), a.holder);
        setAttr(cell(tr, 'holder'), 'title', a.holderNode ? `on node ${a.holderNode}` : a.holder);
        setText(cell(tr, 'kind'), a.kind);
        setText(cell(tr, 'device'), a.deviceId);
        setText(cell(tr, 'share'), pct(a.share));
        setText(cell(tr, 'memory'), a.memoryMiB ? mib(a.memoryMiB) : '—');
        setText(cell(tr, 'owned'), a.borrowed ? 'borrowed' : 'owned');
        setAttr(cell(tr, 'owned'), 'class', `col-owned ${a.borrowed ? 'is-borrowed' : ''}`);
        setText(cell(tr, 'state'), a.state + (a.revokeDeadline ? ` (revoke by ${clock(Date.parse(a.revokeDeadline))})` : ''));
        setText(cell(tr, 'age'), age(now - Date.parse(a.createdAt)));
        setText(cell(tr, 'expires'), `in ${age(Date.parse(a.leaseExpiresAt) - now)}`);
      },
    );
  };
}
