import { readFileSync, readdirSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Client } from 'pg';
import { renderPlot } from '../plot/png-plot';

/** bench:hybrid's instruments: the ledger/progress probe, a CPU tracer and the trace plot. */

const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));
const r = (v: number, d = 1): number => Number(v.toFixed(d));
export const quantile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))]! : NaN;
};
const q = quantile;

export interface Shares {
  cores: number;
  online: number;
  owned: number;
  borrowed: number;
}
/**
 * Ledger shares (in cores) and batch progress, read from Postgres by the bench itself: polling
 * the apps' HTTP APIs would put the observer's work on the gateway's event loop.
 */
export class Probe {
  private queue: Promise<unknown> = Promise.resolve();
  private constructor(private readonly c: Client) {}
  /** One connection, shared by the sampler and the main flow: queries run one after the other. */
  private query<T extends object>(sql: string, args: unknown[]): Promise<{ rows: T[] }> {
    const next = this.queue.then(() => this.c.query<T>(sql, args));
    this.queue = next.catch(() => undefined);
    return next;
  }
  static async open(url: string): Promise<Probe> {
    const c = new Client({ connectionString: url });
    await c.connect();
    return new Probe(c);
  }
  async shares(node: string): Promise<Shares> {
    const res = await this.query<{ cores: number | null; kind: string | null; borrowed: boolean | null; milli: string | null }>(
      `SELECT d.cores, a.kind, a.borrowed, sum(a.share_milli) AS milli
         FROM sched_device d LEFT JOIN sched_allocation a ON a.device_id = d.id AND a.state IN ('active', 'revoking')
        WHERE d.node_name = $1 AND d.kind = 'cpu' GROUP BY d.cores, a.kind, a.borrowed`,
      [node],
    );
    const cores = res.rows[0]?.cores ?? 1;
    const get = (kind: string, borrowed?: boolean): number =>
      r(res.rows.filter((x) => x.kind === kind && (borrowed === undefined || x.borrowed === borrowed)).reduce((s, x) => s + Number(x.milli ?? 0), 0) / 1000 * cores, 2);
    return { cores, online: get('online'), owned: get('batch', false), borrowed: get('batch', true) };
  }
  async progress(id: string): Promise<{ done: number; state: string }> {
    const r = await this.query<{ items_done: string; state: string }>('SELECT items_done, state FROM batch WHERE id = $1', [id]);
    return { done: Number(r.rows[0]?.items_done ?? 0), state: r.rows[0]?.state ?? 'unknown' };
  }
  close(): Promise<void> {
    return this.c.end();
  }
}


/** Debug: CPU use (fraction of a core) per 100 ms of the gateway, the batch worker and all Postgres processes. */
export async function traceCpu(pids: number[], ms: number): Promise<string[]> {
  const cpu = (pid: number): number => {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return Number(f[11]) + Number(f[12]);
    } catch {
      return 0;
    }
  };
  const pg = (): number => readdirSync('/proc').filter((d) => /^\d+$/.test(d)).reduce((s, d) => {
    try {
      return readFileSync(`/proc/${d}/comm`, 'utf8').startsWith('postgres') ? s + cpu(Number(d)) : s;
    } catch {
      return s;
    }
  }, 0);
  const out: string[] = [];
  let prev = [...pids.map(cpu), pg()];
  for (let t = 0; t < ms; t += 100) {
    await sleep(100);
    const cur = [...pids.map(cpu), pg()];
    out.push(`  cpu t=${(t / 1000).toFixed(1)} gateway ${((cur[0]! - prev[0]!) / 10).toFixed(2)} batch ${((cur[1]! - prev[1]!) / 10).toFixed(2)} postgres ${((cur[2]! - prev[2]!) / 10).toFixed(2)}`);
    prev = cur;
  }
  return out;
}

export function writePlot(plotPath: string, samples: { t: number; done: number; offered: number; s: Shares }[], lats: { t: number; ms: number }[], m: { aFrom: number; bFrom: number; cFrom: number; cTo: number; roundsFrom: number }): void {
  const itemsS = samples.map((x, i) => {
    const j = Math.max(0, i - 4);
    return { x: x.t, y: i === j ? NaN : (x.done - samples[j]!.done) / (x.t - samples[j]!.t) };
  });
  const p99: { x: number; y: number }[] = [];
  for (let t = 0; t < (samples.at(-1)?.t ?? 0); t += 0.5) {
    const w = lats.filter((l) => l.t >= t - 1 && l.t < t).map((l) => l.ms);
    p99.push({ x: t, y: w.length >= 5 ? q(w, 0.99) : NaN }); // NaN: a gap while online is idle
  }
  const png = renderPlot({
    title: `bench:hybrid: 40% online ${m.bFrom.toFixed(0)}-${m.cFrom.toFixed(0)} s; revocations from ${m.cTo.toFixed(0)} s; p99 rounds from ${m.roundsFrom.toFixed(0)} s`,
    xLabel: 'seconds since the batch started',
    panels: [
      {
        title: 'Online load',
        yLabel: 'req/s',
        yRightLabel: 'p99 ms',
        series: [
          { name: 'offered rate', color: [40, 90, 200], points: samples.map((x) => ({ x: x.t, y: x.offered })), step: true },
          { name: 'p99 latency (1 s window)', color: [220, 50, 40], points: p99, axis: 'right' },
        ],
      },
      {
        title: 'Online share held in the ledger (cores)',
        yLabel: 'cores',
        yMin: 0,
        series: [{ name: 'online held', color: [220, 50, 40], points: samples.map((x) => ({ x: x.t, y: x.s.online })), step: true }],
      },
      { title: 'Batch throughput', yLabel: 'items/s', series: [{ name: 'batch items/s (1 s window)', color: [30, 150, 60], points: itemsS }] },
      {
        title: 'Batch share held in the ledger (cores)',
        yLabel: 'cores',
        yMin: 0,
        series: [
          { name: 'owned', color: [30, 150, 60], points: samples.map((x) => ({ x: x.t, y: x.s.owned })), step: true },
          { name: 'owned + borrowed', color: [240, 160, 20], points: samples.map((x) => ({ x: x.t, y: x.s.owned + x.s.borrowed })), step: true },
        ],
      },
    ],
  });
  mkdirSync(dirname(plotPath), { recursive: true });
  writeFileSync(plotPath, png);
}

