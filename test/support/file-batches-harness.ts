import { setTimeout as sleep } from 'node:timers/promises';
import { writeNodeModel } from './model-repo';

/** A JSON answer of the batch API (auth off unless a key is given). */
export async function api(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  key?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Uploads JSONL (one object per array element, or raw lines) as a purpose=batch file; returns its id. */
export async function uploadJsonl(base: string, lines: readonly (object | string)[], key?: string): Promise<string> {
  const text = lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n';
  const res = await fetch(`${base}/v1/files?purpose=batch&filename=requests.jsonl`, {
    method: 'POST',
    headers: { 'content-type': 'application/jsonl', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: text,
  });
  const body = (await res.json()) as { id?: string; error?: string };
  if (res.status !== 200 || !body.id) throw new Error(`upload: ${res.status} ${JSON.stringify(body)}`);
  return body.id;
}

export interface OpenAiBatch {
  id: string;
  status: string;
  output_file_id: string | null;
  error_file_id: string | null;
  request_counts: { total: number; completed: number; failed: number };
  [k: string]: unknown;
}

export async function waitForStatus(base: string, id: string, statuses: string[], timeoutMs = 120_000): Promise<OpenAiBatch> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await api(base, 'GET', `/v1/batches/${id}`);
    const b = r.body as unknown as OpenAiBatch;
    if (statuses.includes(b.status)) return b;
    if (Date.now() > deadline) throw new Error(`batch ${id} still ${b.status} after ${timeoutMs} ms: ${JSON.stringify(b)}`);
    await sleep(100);
  }
}

/** A file's JSONL content, parsed line by line. */
export async function fileLines(base: string, id: string | null): Promise<Record<string, unknown>[]> {
  if (!id) return [];
  const res = await fetch(`${base}/v1/files/${id}/content`);
  if (res.status !== 200) throw new Error(`content ${id}: ${res.status}`);
  const text = await res.text();
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Every number of an OIP response's outputs within `tol` of the other's, everything else equal. */
export function sameResponse(a: unknown, b: unknown, tol = 1e-5): boolean {
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameResponse(x, b[i], tol));
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return ka.join() === kb.join() && ka.every((k) => sameResponse((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], tol));
  }
  return a === b;
}

/** A node model `slow` in the repository at `dir`: y = x, 100 ms per request (keeps a batch running long enough to act on it). */
export function writeSlowModel(dir: string): void {
  writeNodeModel(
    dir,
    'slow',
    `import { defineModel } from '@tandem/sdk';
export default defineModel({ async execute({ x }) { await new Promise((r) => setTimeout(r, 100)); return { y: x! }; } });`,
    {
      max_batch_size: 0,
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 1] }],
    },
  );
}

/**
 * The batch app's env for the file-batch tests that run `writeSlowModel`'s model: auth on with
 * `adminKey`, the repository at `repoDir`, one fixed unit and one chunk at a time (so a batch
 * stays in progress long enough to act on it), plus `extra`.
 */
export function slowModelEnv(adminKey: string, repoDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    TANDEM_AUTH: 'on',
    TANDEM_ADMIN_KEY: adminKey,
    MODEL_REPOSITORY: repoDir,
    BATCH_INFER_THREADS: '1',
    BATCH_DEVICE_SHARES: 'fixed',
    BATCH_CONCURRENCY: '1',
    ...extra,
  };
}
