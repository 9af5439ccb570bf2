import { fuzzCase, type FuzzCase } from './cases';

export interface FuzzTargets {
  gatewayUrl: string;
  batchUrl: string;
  /** Sent as a bearer token when set (auth on), so cases reach the handlers. */
  key?: string;
  /** Send only the cases for this app (to tell where a problem lives). */
  only?: 'gateway' | 'batch';
}

export interface FuzzReport {
  cases: number;
  byStatus: Record<string, number>;
  /** 5xx answers, connection failures and timeouts: each one a defect. */
  defects: { i: number; kind: string; outcome: string; detail: string }[];
}

async function send(base: string, c: FuzzCase, key: string | undefined, timeoutMs: number): Promise<{ status: number; body: string }> {
  const res = await fetch(`${base}${c.path}`, {
    method: c.method,
    headers: { ...c.headers, ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: c.method === 'POST' ? (c.body ?? Buffer.alloc(0)) : undefined,
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: res.status, body: (await res.text()).slice(0, 300) };
}

/**
 * Sends `count` generated cases (seeded, so replayable) with `concurrency` in flight. A case
 * passes when it gets any non-5xx answer in time; 4xx answers must carry `{"error": …}`.
 */
export async function runFuzz(t: FuzzTargets, seed: number, count: number, concurrency = 8, timeoutMs = 10_000, from = 0): Promise<FuzzReport> {
  const report: FuzzReport = { cases: 0, byStatus: {}, defects: [] };
  let next = from;
  const worker = async (): Promise<void> => {
    while (next < from + count) {
      const i = next++;
      const { target, c } = fuzzCase(seed, i);
      if (t.only && t.only !== target) continue;
      let outcome: string;
      try {
        const r = await send(target === 'gateway' ? t.gatewayUrl : t.batchUrl, c, t.key, timeoutMs);
        outcome = String(r.status);
        if (r.status >= 500) report.defects.push({ i, kind: c.kind, outcome, detail: r.body });
        else if (r.status >= 400 && !/^\{"error":/.test(r.body))
          report.defects.push({ i, kind: c.kind, outcome: `${outcome} without {"error"}`, detail: r.body });
      } catch (e) {
        const name = (e as Error).name === 'TimeoutError' ? 'timeout' : 'connection-error';
        outcome = name;
        report.defects.push({ i, kind: c.kind, outcome: name, detail: (e as Error).message });
      }
      report.byStatus[outcome] = (report.byStatus[outcome] ?? 0) + 1;
      report.cases++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return report;
}
