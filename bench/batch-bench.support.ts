import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';

/** A fresh, migrated database for one bench run (dropped at the end). */
export async function freshDatabase(
  adminUrl: string,
  name: string,
  migrate: (url: string) => Promise<unknown>,
): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = async (sql: string): Promise<void> => {
    const c = new Client({ connectionString: adminUrl });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin(`CREATE DATABASE "${name}"`);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  await migrate(u.toString());
  return { url: u.toString(), drop: () => admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) };
}

export interface BatchStatus {
  id: string;
  state: string;
  result: { count: number; sum: string } | null;
  error: string | null;
}

/** Submits inline items and waits for a terminal state; returns the wall time (submit → terminal). */
export async function runChord(
  base: string,
  items: unknown[],
  chunkSize: number,
  task = 'score',
): Promise<{ seconds: number; submitSeconds: number; status: BatchStatus }> {
  const body = JSON.stringify({ task, items, reducer: 'summarize', chunkSize });
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/batches`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  if (res.status !== 201) throw new Error(`submit failed: ${res.status} ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  const submitted = performance.now();
  for (;;) {
    const st = (await (await fetch(`${base}/v1/batches/${id}`)).json()) as BatchStatus;
    if (st.state === 'succeeded' || st.state === 'failed' || st.state === 'cancelled')
      return { seconds: (performance.now() - t0) / 1000, submitSeconds: (submitted - t0) / 1000, status: st };
    await sleep(20);
  }
}

export function sumOfSquares(n: number): string {
  const b = BigInt(n);
  return (((b - 1n) * b * (2n * b - 1n)) / 6n).toString();
}
