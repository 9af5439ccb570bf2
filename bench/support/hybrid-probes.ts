import { Client } from 'pg';

/** bench:hybrid's instruments: the ledger/progress probe and a quantile. */

const r = (v: number, d = 1): number => Number(v.toFixed(d));
export const quantile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))]! : NaN;
};

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
      r(
        (res.rows.filter((x) => x.kind === kind && (borrowed === undefined || x.borrowed === borrowed)).reduce((s, x) => s + Number(x.milli ?? 0), 0) / 1000) *
          cores,
        2,
      );
    return { cores, online: get('online'), owned: get('batch', false), borrowed: get('batch', true) };
  }
  async progress(id: string): Promise<{ done: number; state: string }> {
    const r = await this.query<{ items_done: string; state: string }>('SELECT items_done, state FROM batch WHERE id = $1', [id]);
    return { done: Number(r.rows[0]?.items_done ?? 0), state: r.rows[0]?.state ?? 'unknown' };
  }
  /** Postgres client backends by application_name (the apps name their pools): whose queries the server's CPU went to. */
  async backends(): Promise<Map<number, string>> {
    const r = await this.query<{ pid: number; app: string }>(
      `SELECT pid, application_name AS app FROM pg_stat_activity WHERE backend_type = 'client backend'`,
      [],
    );
    return new Map(r.rows.map((x) => [Number(x.pid), x.app]));
  }
  close(): Promise<void> {
    return this.c.end();
  }
}
