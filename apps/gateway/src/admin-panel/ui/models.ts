import { api } from './api';
import type { ModelHistory, ModelView } from './api-types';
import { ChartGrid, COLORS } from './charts';
import { formDialog } from './dialog';
import { $, cell, cellsRow, clock, emptyRow, h, setText, syncRows, type Loader, type ViewContext } from './dom';
import { history, windowOf } from './history';

// Models: replicas, load and latency per model, the operator's min/max replicas, and each
// model's last 15 minutes (request rate, p99 against the SLO, queue depth, replicas).

const COLS = ['name', 'versions', 'replicas', 'ongoing', 'queue', 'p99q', 'p99c', 'limits', 'scaled', 'actions'] as const;
const ms = (x: number | null): string => (x === null ? '—' : `≤ ${x} ms`);

interface ModelRow extends HTMLTableRowElement {
  model?: ModelView;
}

function editLimits(m: ModelView, ctx: ViewContext): Promise<boolean> {
  return formDialog<'min_replicas' | 'max_replicas'>({
    title: `Replicas of ${m.name}`,
    fields: [
      { name: 'min_replicas', label: 'Minimum replicas', value: m.minReplicas ?? m.replicas, step: 1, min: 0, max: 64 },
      { name: 'max_replicas', label: 'Maximum replicas', value: m.maxReplicas ?? Math.max(1, m.replicas), step: 1, min: 1, max: 64 },
    ],
    validate(v) {
      if (!Number.isInteger(v.min_replicas) || !Number.isInteger(v.max_replicas)) return 'replica counts must be whole numbers';
      if (v.min_replicas < 0 || v.max_replicas < 1 || v.max_replicas > 64) return 'need 0 ≤ min and 1 ≤ max ≤ 64';
      if (v.min_replicas > v.max_replicas) return 'minimum must be ≤ maximum';
      return null;
    },
    summary: (v) =>
      `Let the autoscaler run ${m.name} on ${v.min_replicas}–${v.max_replicas} replicas` +
      `${m.autoscaled ? ` (now ${m.minReplicas}–${m.maxReplicas})` : ' (it is not autoscaled yet; this turns autoscaling on)'}? The change is audited.`,
    confirmLabel: 'Set replicas',
    async apply(v) {
      await api.setReplicaLimits(m.name, { min_replicas: v.min_replicas, max_replicas: v.max_replicas });
      await ctx.refresh();
    },
  });
}

export function modelsView(root: HTMLElement, ctx: ViewContext): Loader {
  const tbody = $<HTMLTableSectionElement>('tbody', root);
  const charts = new ChartGrid<ModelHistory & { slo: number | null }>($('.model-charts', root), (m) => [
    {
      key: `model-load:${m.name}`,
      title: `${m.name} — requests/s, queue depth, replicas`,
      series: [
        { label: 'requests/s', color: COLORS.online, scale: 'rate', fill: true },
        { label: 'queue', color: COLORS.queue, scale: 'count' },
        { label: 'replicas', color: COLORS.replicas, scale: 'count', dash: [6, 4] },
      ],
      axes: [
        { scale: 'rate', label: 'req/s' },
        { scale: 'count', label: 'count', side: 'right' },
      ],
    },
    {
      key: `model-p99:${m.name}`,
      title: `${m.name} — p99 latency${m.slo === null ? ' (no SLO set)' : ` vs SLO ${m.slo} ms`}`,
      series: [
        { label: 'p99 ms', color: COLORS.p99, scale: 'ms', points: true },
        { label: 'SLO ms', color: COLORS.slo, scale: 'ms', dash: [6, 4] },
      ],
      axes: [{ scale: 'ms', label: 'ms' }],
    },
  ]);
  return async function load() {
    const [{ models }, hist] = await Promise.all([api.get('/models'), history()]);
    const slo = hist.sloP99Ms;
    charts.sync(
      hist.models.map((m) => ({ ...m, slo })),
      (m, chart, i) => {
        if (i === 0) chart.update(windowOf(hist), m.t, [m.requestsPerS, m.queueDepth, m.replicas]);
        else chart.update(windowOf(hist), m.t, [m.p99Ms, m.t.map(() => slo)]);
      },
    );
    if (models.length === 0) {
      tbody.replaceChildren(emptyRow(tbody, COLS.length, 'No models in the repository.'));
      return;
    }
    tbody.querySelector('tr.empty')?.remove();
    syncRows<ModelView, ModelRow>(
      tbody,
      models,
      (m) => m.name,
      () => {
        const tr: ModelRow = cellsRow(COLS);
        const btn = h('button', { type: 'button', class: 'secondary', text: 'Replicas…' });
        cell(tr, 'actions').append(btn);
        btn.addEventListener('click', () => tr.model && void editLimits(tr.model, ctx));
        return tr;
      },
      (tr, m) => {
        tr.model = m;
        tr.dataset.model = m.name;
        setText(cell(tr, 'name'), m.name);
        setText(cell(tr, 'versions'), m.versions.map((v) => `v${v.version} ${v.state}${v.error ? `: ${v.error}` : ''}`).join(', '));
        setText(cell(tr, 'replicas'), m.replicas);
        setText(cell(tr, 'ongoing'), m.ongoing);
        setText(cell(tr, 'queue'), m.queueDepth);
        setText(cell(tr, 'p99q'), ms(m.p99QueueMs));
        setText(cell(tr, 'p99c'), ms(m.p99ComputeMs));
        setText(cell(tr, 'limits'), m.autoscaled ? `${m.minReplicas}–${m.maxReplicas}` : 'fixed');
        setText(cell(tr, 'scaled'), m.lastScale ? `${m.lastScale.from} → ${m.lastScale.to} at ${clock(Date.parse(m.lastScale.at))}` : '—');
      },
    );
  };
}
