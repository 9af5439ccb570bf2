import { api } from './api.js';
import { age, emptyRow, h, mib, pct, setAttr, setText, syncRows } from './dom.js';

// Allocations: who holds which share of which device, owned or borrowed, and for how long.

const COLS = ['holder', 'kind', 'device', 'share', 'memory', 'owned', 'state', 'age', 'expires'];

export function allocationsView(root) {
  const tbody = root.querySelector('tbody');
  return async function load() {
    const { allocations } = await api('GET', '/allocations?limit=500');
    const now = Date.now();
    if (allocations.length === 0) {
      tbody.replaceChildren(emptyRow(tbody, COLS.length, 'No allocations: nothing holds a share of any device right now.'));
      return;
    }
    tbody.querySelector('tr.empty')?.remove();
    syncRows(
      tbody,
      allocations,
      (a) => a.id,
      () => h('tr', {}, ...COLS.map((c) => h('td', { class: `col-${c}` }))),
      (tr, a) => {
        const cell = (c) => tr.querySelector(`.col-${c}`);
        setAttr(tr, 'data-holder', a.holder);
        setText(cell('holder'), a.holder);
        setAttr(cell('holder'), 'title', a.holderNode ? `on node ${a.holderNode}` : a.holder);
        setText(cell('kind'), a.kind);
        setText(cell('device'), a.deviceId);
        setText(cell('share'), pct(a.share));
        setText(cell('memory'), a.memoryMiB ? mib(a.memoryMiB) : '—');
        setText(cell('owned'), a.borrowed ? 'borrowed' : 'owned');
        setAttr(cell('owned'), 'class', `col-owned ${a.borrowed ? 'is-borrowed' : ''}`);
        setText(cell('state'), a.state + (a.revokeDeadline ? ` (revoke by ${new Date(a.revokeDeadline).toLocaleTimeString(undefined, { hour12: false })})` : ''));
        setText(cell('age'), age(now - Date.parse(a.createdAt)));
        setText(cell('expires'), `in ${age(Date.parse(a.leaseExpiresAt) - now)}`);
      },
    );
  };
}
