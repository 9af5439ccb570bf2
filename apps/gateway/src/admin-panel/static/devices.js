import { api } from './api.js';
import { formDialog, confirmDialog } from './dialog.js';
import { age, h, mib, pct, setAttr, setText, syncRows } from './dom.js';

// Devices: one row per device, grouped by node; bars are resized in place on every poll.

const SEGMENTS = [
  ['online', 'online-owned'],
  ['borrowed', 'borrowed by batch'],
  ['batch', 'batch-owned'],
  ['free', 'free (unpartitioned)'],
];

const clamp = (x) => Math.min(1, Math.max(0, x));

/**
 * Shares of the whole device: who owns what (partition), and how much of online's share batch
 * occupies right now (its allocations beyond its own partition; the ledger flags a whole
 * allocation `borrowed` when any of it came from online, so the flag alone overstates this).
 */
export function shares(d) {
  const onlinePart = clamp(d.partition.online);
  const batch = clamp(d.partition.batch);
  const borrowed = Math.min(onlinePart, clamp(d.used.batch - batch));
  const online = clamp(onlinePart - borrowed);
  const free = clamp(1 - onlinePart - batch);
  return { online, borrowed, batch, free };
}

function bar(cls, label) {
  return h('div', { class: `bar ${cls}`, role: 'img', 'aria-label': label }, ...SEGMENTS.map(([k]) => h('span', { class: `seg seg-${k}`, dataset: { seg: k } })));
}

function createRow(refresh, setBusy) {
  return (d) => {
    const partitionBtn = h('button', { type: 'button', class: 'secondary', text: 'Partition…', dataset: { action: 'partition' } });
    const drainBtn = h('button', { type: 'button', class: 'secondary', dataset: { action: 'drain' } });
    const row = h(
      'div',
      { class: 'device-row', role: 'row' },
      h('div', { class: 'dev-name', role: 'cell' }, h('strong', { class: 'dev-id' }), h('small', { class: 'dev-model' })),
      h(
        'div',
        { class: 'dev-bars', role: 'cell' },
        bar('bar-owner', 'ownership'),
        bar('bar-use', 'in use'),
        h('div', { class: 'dev-legend' }, h('span', { class: 'dev-part' }), h('span', { class: 'dev-use' }), h('span', { class: 'dev-cost' })),
      ),
      h('div', { class: 'dev-mem', role: 'cell' }),
      h('div', { class: 'dev-state', role: 'cell' }, h('span', { class: 'badge' })),
      h('div', { class: 'dev-actions', role: 'cell' }, partitionBtn, drainBtn),
    );
    partitionBtn.addEventListener('click', () => editPartition(row.device, refresh, setBusy));
    drainBtn.addEventListener('click', () => toggleDrain(row.device, refresh, setBusy));
    return row;
  };
}

function updateRow(row, d) {
  row.device = d;
  row.dataset.device = d.id;
  setText(row.querySelector('.dev-id'), d.localId);
  setText(row.querySelector('.dev-model'), `${d.kind.toUpperCase()} · ${d.model}${d.cores ? ` · ${d.cores} cores` : ''}`);
  const s = shares(d);
  const owner = row.querySelector('.bar-owner');
  for (const [k] of SEGMENTS) {
    const seg = owner.querySelector(`[data-seg="${k}"]`);
    seg.style.width = `${s[k] * 100}%`;
    setAttr(seg, 'data-share', s[k].toFixed(3));
  }
  setAttr(owner, 'aria-label', `ownership: online ${pct(s.online)}, borrowed ${pct(s.borrowed)}, batch ${pct(s.batch)}, free ${pct(s.free)}`);
  const useOnline = clamp(d.used.online);
  const useBatch = clamp(d.used.batch);
  const use = { online: useOnline, borrowed: 0, batch: useBatch, free: clamp(1 - useOnline - useBatch) };
  const useBar = row.querySelector('.bar-use');
  for (const [k] of SEGMENTS) {
    const seg = useBar.querySelector(`[data-seg="${k}"]`);
    seg.style.width = `${use[k] * 100}%`;
    setAttr(seg, 'data-share', use[k].toFixed(3));
  }
  setAttr(useBar, 'aria-label', `in use: online ${pct(useOnline)}, batch ${pct(useBatch)}, idle ${pct(use.free)}`);
  setText(
    row.querySelector('.dev-part'),
    `partition: online ${pct(d.partition.online)} · batch ${pct(d.partition.batch)} · borrowing ${d.partition.batchMayBorrow ? 'allowed' : 'off'}`,
  );
  setText(
    row.querySelector('.dev-use'),
    `in use: online ${pct(useOnline)} · batch ${pct(useBatch)} (${pct(s.borrowed)} borrowed) · ${d.used.allocations} allocation${d.used.allocations === 1 ? '' : 's'}` +
      (d.used.pendingOnline > 0 ? ` · ${pct(d.used.pendingOnline)} online pending` : ''),
  );
  setText(row.querySelector('.dev-cost'), costText(d.cost));
  setAttr(row.querySelector('.dev-cost'), 'class', `dev-cost ${d.cost?.ratio > 1.5 ? 'cost-bad' : ''}`);
  setText(row.querySelector('.dev-mem'), `${mib(d.used.memoryMiB)} / ${mib(d.memoryMiB)}`);
  const badge = row.querySelector('.badge');
  setText(badge, d.drained ? 'drained' : d.nodeStatus === 'alive' ? 'active' : d.nodeStatus);
  setAttr(badge, 'class', `badge ${d.drained ? 'badge-warn' : d.nodeStatus === 'alive' ? 'badge-ok' : 'badge-bad'}`);
  setText(row.querySelector('[data-action="drain"]'), d.drained ? 'Undrain' : 'Drain');
}

/** What the batch costs online on this device now: p99 now vs without a batch (the promise, watched). */
export function costText(c) {
  if (!c) return '';
  const ms = (x) => (x === null ? '–' : `${x.toFixed(1)} ms`);
  const worst = c.models.filter((m) => m.ratio !== null).sort((a, b) => b.ratio - a.ratio)[0];
  if (!worst) return `online p99: not enough traffic yet${c.batchPresent ? ' · batch present' : ''}`;
  return c.batchPresent
    ? `batch cost: online p99 ${ms(worst.p99NowMs)} vs ${ms(worst.baselineP99Ms)} without batch (${worst.ratio.toFixed(2)}×, ${worst.model})`
    : `no batch on this device · online p99 ${ms(worst.p99NowMs)} (baseline ${ms(worst.baselineP99Ms)})`;
}

function editPartition(d, refresh, setBusy) {
  const num = (x) => Math.round(x * 1000) / 1000;
  return formDialog({
    title: `Partition of ${d.id}`,
    fields: [
      { name: 'online', label: 'Online share (0–1)', value: num(d.partition.online), step: 0.05, min: 0, max: 1 },
      { name: 'batch', label: 'Batch share (0–1)', value: num(d.partition.batch), step: 0.05, min: 0, max: 1 },
      { name: 'batchMayBorrow', label: "Batch may borrow online's idle share", type: 'checkbox', value: d.partition.batchMayBorrow },
    ],
    validate(v) {
      for (const k of ['online', 'batch']) {
        if (!Number.isFinite(v[k])) return `${k} share must be a number`;
        if (v[k] < 0 || v[k] > 1) return `${k} share must be between 0 and 1`;
      }
      if (v.online + v.batch > 1 + 1e-9) return `online + batch must be ≤ 1 (is ${num(v.online + v.batch)})`;
      return null;
    },
    summary: (v) =>
      `Change ${d.id} from online ${pct(d.partition.online)} / batch ${pct(d.partition.batch)} to online ${pct(v.online)} / batch ${pct(v.batch)}, ` +
      `borrowing ${v.batchMayBorrow ? 'allowed' : 'off'}? Running allocations keep their shares; the change is audited.`,
    confirmLabel: 'Apply partition',
    async apply(v) {
      setBusy(true);
      try {
        await api('PUT', `/devices/${encodeURIComponent(d.node)}/${encodeURIComponent(d.localId)}/partition`, v);
      } finally {
        setBusy(false);
      }
      await refresh();
    },
  });
}

function toggleDrain(d, refresh, setBusy) {
  const drain = !d.drained;
  return confirmDialog({
    title: `${drain ? 'Drain' : 'Undrain'} ${d.id}`,
    message: drain
      ? `Drain ${d.id}? No new allocations will be placed on it; current ones keep running until released.`
      : `Undrain ${d.id}? It becomes available for new allocations again.`,
    confirmLabel: drain ? 'Drain device' : 'Undrain device',
    danger: drain,
    async apply() {
      setBusy(true);
      try {
        await api('POST', `/devices/${encodeURIComponent(d.node)}/${encodeURIComponent(d.localId)}/${drain ? 'drain' : 'undrain'}`);
      } finally {
        setBusy(false);
      }
      await refresh();
    },
  });
}

export function devicesView(root, { refresh, setBusy }) {
  const nodesEl = root.querySelector('.nodes');
  return async function load() {
    const [{ nodes }, { devices }, { batchCost }] = await Promise.all([api('GET', '/nodes'), api('GET', '/devices'), api('GET', '/hybrid/cost')]);
    const costs = new Map(batchCost.map((c) => [c.device, c]));
    for (const d of devices) d.cost = costs.get(d.id) ?? null;
    const byNode = new Map(nodes.map((n) => [n.name, { node: n, devices: [] }]));
    for (const d of devices) {
      if (!byNode.has(d.node)) byNode.set(d.node, { node: { name: d.node, status: d.nodeStatus, lastHeartbeatAt: null, hostname: '' }, devices: [] });
      byNode.get(d.node).devices.push(d);
    }
    const groups = [...byNode.values()].sort((a, b) => a.node.name.localeCompare(b.node.name));
    const rowFactory = createRow(refresh, setBusy);
    syncRows(
      nodesEl,
      groups,
      (g) => g.node.name,
      () =>
        h(
          'section',
          { class: 'node' },
          h('header', { class: 'node-head' }, h('h3', { class: 'node-name' }), h('span', { class: 'badge node-status' }), h('span', { class: 'node-meta' })),
          h('div', { class: 'device-list', role: 'table' }),
        ),
      (el, g) => {
        el.dataset.node = g.node.name;
        setText(el.querySelector('.node-name'), g.node.name);
        const st = el.querySelector('.node-status');
        setText(st, g.node.status);
        setAttr(st, 'class', `badge node-status ${g.node.status === 'alive' ? 'badge-ok' : 'badge-bad'}`);
        const hb = g.node.lastHeartbeatAt ? `heartbeat ${age(Date.now() - Date.parse(g.node.lastHeartbeatAt))} ago` : '';
        setText(el.querySelector('.node-meta'), [g.node.hostname, hb, `${g.devices.length} device${g.devices.length === 1 ? '' : 's'}`].filter(Boolean).join(' · '));
        syncRows(el.querySelector('.device-list'), g.devices, (d) => d.id, rowFactory, updateRow);
      },
    );
    root.querySelector('.empty-note').hidden = groups.length > 0;
  };
}
