import { api } from './api.js';
import { formDialog } from './dialog.js';
import { emptyRow, h, setText, syncRows } from './dom.js';

// Models: replicas, load and latency per model, and the operator's min/max replicas.

const COLS = ['name', 'versions', 'replicas', 'ongoing', 'queue', 'p99q', 'p99c', 'limits', 'scaled', 'actions'];
const ms = (x) => (x === null ? '—' : `≤ ${x} ms`);

function editLimits(m, refresh) {
  return formDialog({
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
      await api('PUT', `/models/${encodeURIComponent(m.name)}/limits`, v);
      await refresh();
    },
  });
}

export function modelsView(root, { refresh }) {
  const tbody = root.querySelector('tbody');
  return async function load() {
    const { models } = await api('GET', '/models');
    if (models.length === 0) {
      tbody.replaceChildren(emptyRow(tbody, COLS.length, 'No models in the repository.'));
      return;
    }
    tbody.querySelector('tr.empty')?.remove();
    syncRows(
      tbody,
      models,
      (m) => m.name,
      () => {
        const btn = h('button', { type: 'button', class: 'secondary', text: 'Replicas…' });
        const tr = h('tr', {}, ...COLS.map((c) => h('td', { class: `col-${c}` })));
        tr.querySelector('.col-actions').append(btn);
        btn.addEventListener('click', () => editLimits(tr.model, refresh));
        return tr;
      },
      (tr, m) => {
        tr.model = m;
        tr.dataset.model = m.name;
        const cell = (c) => tr.querySelector(`.col-${c}`);
        setText(cell('name'), m.name);
        setText(cell('versions'), m.versions.map((v) => `v${v.version} ${v.state}${v.error ? `: ${v.error}` : ''}`).join(', '));
        setText(cell('replicas'), m.replicas);
        setText(cell('ongoing'), m.ongoing);
        setText(cell('queue'), m.queueDepth);
        setText(cell('p99q'), ms(m.p99QueueMs));
        setText(cell('p99c'), ms(m.p99ComputeMs));
        setText(cell('limits'), m.autoscaled ? `${m.minReplicas}–${m.maxReplicas}` : 'fixed');
        setText(cell('scaled'), m.lastScale ? `${m.lastScale.from} → ${m.lastScale.to} at ${new Date(m.lastScale.at).toLocaleTimeString(undefined, { hour12: false })}` : '—');
      },
    );
  };
}
