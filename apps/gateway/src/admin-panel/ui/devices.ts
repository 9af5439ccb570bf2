import { api } from './api';
import type { DeviceCost, DeviceHistory, DeviceView, HistoryView, NodeView } from './api-types';
import { ChartGrid, COLORS } from './charts';
import { confirmDialog, formDialog } from './dialog';
import { $, age, h, mib, pct, setAttr, setText, syncRows, type Loader, type ViewContext } from './dom';
import { history, windowOf } from './history';

// Devices: one row per device, grouped by node; bars are resized in place on every poll; below,
// each device's last 15 minutes (shares, memory, revocations).

type Segment = 'online' | 'borrowed' | 'batch' | 'free';
const SEGMENTS: readonly Segment[] = ['online', 'borrowed', 'batch', 'free'];
type Shares = Record<Segment, number>;

/** Fields another change may add to DeviceView (MIG slices); shown when present. */

interface DeviceRow extends HTMLDivElement {
  device?: DeviceView;
}

const clamp = (x: number): number => Math.min(1, Math.max(0, x));

/**
 * Shares of the whole device: who owns what (partition), and how much of online's share batch
 * occupies right now (its allocations beyond its own partition; the ledger flags a whole
 * allocation `borrowed` when any of it came from online, so the flag alone overstates this).
 */
export function shares(d: DeviceView): Shares {
  const onlinePart = clamp(d.partition.online);
  const batch = clamp(d.partition.batch);
  const borrowed = Math.min(onlinePart, clamp(d.used.batch - batch));
  const online = clamp(onlinePart - borrowed);
  const free = clamp(1 - onlinePart - batch);
  return { online, borrowed, batch, free };
}

function bar(cls: string, label: string): HTMLDivElement {
  return h('div', { class: `bar ${cls}`, role: 'img', 'aria-label': label }, ...SEGMENTS.map((k) => h('span', { class: `seg seg-${k}`, dataset: { seg: k } })));
}

function setBar(barEl: Element, s: Shares): void {
  for (const k of SEGMENTS) {
    const seg = $(`[data-seg="${k}"]`, barEl);
    seg.style.width = `${s[k] * 100}%`;
    setAttr(seg, 'data-share', s[k].toFixed(3));
  }
}

function describeDevice(d: DeviceView): string {
  // A MIG instance leads with what it is (the model name ends in the profile anyway); memory has its own column.
  if (d.migProfile) return `MIG ${d.migProfile} · ${d.computeFraction?.toFixed(2) ?? '?'} of GPU ${d.gpuIndex ?? '?'}`;
  const parts = [d.kind.toUpperCase(), d.model];
  if (d.cores) parts.push(`${d.cores} cores`);
  if (d.migMode && d.migMode !== 'Disabled' && d.migMode !== 'N/A') parts.push(`MIG ${d.migMode}`);
  return parts.join(' · ');
}

function createRow(ctx: ViewContext): (d: DeviceView) => DeviceRow {
  return () => {
    const partitionBtn = h('button', { type: 'button', class: 'secondary', text: 'Partition…', dataset: { action: 'partition' } });
    const drainBtn = h('button', { type: 'button', class: 'secondary', dataset: { action: 'drain' } });
    const row: DeviceRow = h(
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
    partitionBtn.addEventListener('click', () => row.device && void editPartition(row.device, ctx));
    drainBtn.addEventListener('click', () => row.device && void toggleDrain(row.device, ctx));
    return row;
  };
}

function updateRow(row: DeviceRow, d: DeviceView & { cost: DeviceCost | null }): void {
  row.device = d;
  row.dataset.device = d.id;
  setText($('.dev-id', row), d.localId);
  setText($('.dev-model', row), describeDevice(d));
  setAttr($('.dev-model', row), 'title', [d.model, d.gpuUuid, d.parentGpuUuid && `on ${d.parentGpuUuid}`].filter(Boolean).join(' · '));
  const s = shares(d);
  const owner = $('.bar-owner', row);
  setBar(owner, s);
  setAttr(owner, 'aria-label', `ownership: online ${pct(s.online)}, borrowed ${pct(s.borrowed)}, batch ${pct(s.batch)}, free ${pct(s.free)}`);
  const useOnline = clamp(d.used.online);
  const useBatch = clamp(d.used.batch);
  const use: Shares = { online: useOnline, borrowed: 0, batch: useBatch, free: clamp(1 - useOnline - useBatch) };
  const useBar = $('.bar-use', row);
  setBar(useBar, use);
  setAttr(useBar, 'aria-label', `in use: online ${pct(useOnline)}, batch ${pct(useBatch)}, idle ${pct(use.free)}`);
  setText(
    $('.dev-part', row),
    `partition: online ${pct(d.partition.online)} · batch ${pct(d.partition.batch)} · borrowing ${d.partition.batchMayBorrow ? 'allowed' : 'off'}`,
  );
  setText(
    $('.dev-use', row),
    `in use: online ${pct(useOnline)} · batch ${pct(useBatch)} (${pct(s.borrowed)} borrowed) · ${d.used.allocations} allocation${d.used.allocations === 1 ? '' : 's'}` +
      (d.used.pendingOnline > 0 ? ` · ${pct(d.used.pendingOnline)} online pending` : ''),
  );
  setText($('.dev-cost', row), costText(d.cost));
  setAttr($('.dev-cost', row), 'class', `dev-cost ${d.cost && (d.cost.ratio ?? 0) > 1.5 ? 'cost-bad' : ''}`);
  setText($('.dev-mem', row), `${mib(d.used.memoryMiB)} / ${mib(d.memoryMiB)}`);
  const badge = $('.badge', row);
  setText(badge, d.drained ? 'drained' : d.nodeStatus === 'alive' ? 'active' : d.nodeStatus);
  setAttr(badge, 'class', `badge ${d.drained ? 'badge-warn' : d.nodeStatus === 'alive' ? 'badge-ok' : 'badge-bad'}`);
  setText($('[data-action="drain"]', row), d.drained ? 'Undrain' : 'Drain');
}

/** What the batch costs online on this device now: p99 now vs without a batch (the promise, watched). */
export function costText(c: DeviceCost | null): string {
  if (!c) return '';
  const ms = (x: number | null): string => (x === null ? '–' : `${x.toFixed(1)} ms`);
  const worst = c.models.filter((m) => m.ratio !== null).sort((a, b) => (b.ratio ?? 0) - (a.ratio ?? 0))[0];
  if (!worst) return `online p99: not enough traffic yet${c.batchPresent ? ' · batch present' : ''}`;
  return c.batchPresent
    ? `batch cost: online p99 ${ms(worst.p99NowMs)} vs ${ms(worst.baselineP99Ms)} without batch (${(worst.ratio ?? 0).toFixed(2)}×, ${worst.model})`
    : `no batch on this device · online p99 ${ms(worst.p99NowMs)} (baseline ${ms(worst.baselineP99Ms)})`;
}

function editPartition(d: DeviceView, ctx: ViewContext): Promise<boolean> {
  const num = (x: number): number => Math.round(x * 1000) / 1000;
  return formDialog<'online' | 'batch', 'batchMayBorrow'>({
    title: `Partition of ${d.id}`,
    fields: [
      { name: 'online', label: 'Online share (0–1)', value: num(d.partition.online), step: 0.05, min: 0, max: 1 },
      { name: 'batch', label: 'Batch share (0–1)', value: num(d.partition.batch), step: 0.05, min: 0, max: 1 },
      { name: 'batchMayBorrow', label: "Batch may borrow online's idle share", type: 'checkbox', value: d.partition.batchMayBorrow },
    ],
    validate(v) {
      for (const k of ['online', 'batch'] as const) {
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
      ctx.setBusy(true);
      try {
        await api.setPartition(d, { online: v.online, batch: v.batch, batchMayBorrow: v.batchMayBorrow });
      } finally {
        ctx.setBusy(false);
      }
      await ctx.refresh();
    },
  });
}

function toggleDrain(d: DeviceView, ctx: ViewContext): Promise<boolean> {
  const drain = !d.drained;
  return confirmDialog({
    title: `${drain ? 'Drain' : 'Undrain'} ${d.id}`,
    message: drain
      ? `Drain ${d.id}? No new allocations will be placed on it; current ones keep running until released.`
      : `Undrain ${d.id}? It becomes available for new allocations again.`,
    confirmLabel: drain ? 'Drain device' : 'Undrain device',
    danger: drain,
    async apply() {
      ctx.setBusy(true);
      try {
        await api.setDrained(d, drain);
      } finally {
        ctx.setBusy(false);
      }
      await ctx.refresh();
    },
  });
}

const share = (v: number): string => `${Math.round(v * 100)}%`;

function deviceCharts(container: HTMLElement): (h: HistoryView) => void {
  const grid = new ChartGrid<DeviceHistory>(container, (d) => [
    {
      key: `device:${d.id}`,
      title: `${d.id} — shares in use and memory`,
      series: [
        { label: 'online', color: COLORS.online, scale: 'share' },
        { label: 'borrowed', color: COLORS.borrowed, scale: 'share' },
        { label: 'batch', color: COLORS.batch, scale: 'share' },
        { label: 'memory MiB', color: COLORS.memory, scale: 'mib', dash: [6, 4] },
      ],
      axes: [
        { scale: 'share', label: 'share', range: [0, 1], format: share },
        { scale: 'mib', label: 'MiB', side: 'right' },
      ],
    },
  ]);
  return (hist) => {
    grid.sync(hist.devices, (d, chart) => {
      const marks = hist.revocations.filter((r) => r.deviceId === d.id).map((r) => r.t);
      chart.update(windowOf(hist), d.t, [d.online, d.borrowed, d.batch, d.memoryUsedMiB], marks);
    });
  };
}

export function devicesView(root: HTMLElement, ctx: ViewContext): Loader {
  const nodesEl = $('.nodes', root);
  const drawCharts = deviceCharts($('.device-charts', root));
  const rowFactory = createRow(ctx);
  return async function load() {
    const [{ nodes }, { devices }, { batchCost }, hist] = await Promise.all([api.get('/nodes'), api.get('/devices'), api.get('/hybrid/cost'), history()]);
    const costs = new Map(batchCost.map((c) => [c.device, c]));
    type Group = { node: Pick<NodeView, 'name' | 'status' | 'lastHeartbeatAt' | 'hostname'>; devices: (DeviceView & { cost: DeviceCost | null })[] };
    const byNode = new Map<string, Group>(nodes.map((n) => [n.name, { node: n, devices: [] }]));
    for (const d of devices) {
      let g = byNode.get(d.node);
      if (!g) {
        g = { node: { name: d.node, status: d.nodeStatus, lastHeartbeatAt: '', hostname: '' }, devices: [] };
        byNode.set(d.node, g);
      }
      g.devices.push({ ...d, cost: costs.get(d.id) ?? null });
    }
    const groups = [...byNode.values()].sort((a, b) => a.node.name.localeCompare(b.node.name));
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
        setText($('.node-name', el), g.node.name);
        const st = $('.node-status', el);
        setText(st, g.node.status);
        setAttr(st, 'class', `badge node-status ${g.node.status === 'alive' ? 'badge-ok' : 'badge-bad'}`);
        const hb = g.node.lastHeartbeatAt ? `heartbeat ${age(Date.now() - Date.parse(g.node.lastHeartbeatAt))} ago` : '';
        setText($('.node-meta', el), [g.node.hostname, hb, `${g.devices.length} device${g.devices.length === 1 ? '' : 's'}`].filter(Boolean).join(' · '));
        syncRows($('.device-list', el), g.devices, (d) => d.id, rowFactory, updateRow);
      },
    );
    $('.empty-note', root).hidden = groups.length > 0;
    drawCharts(hist);
  };
}
