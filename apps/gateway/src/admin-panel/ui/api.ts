import type {
  AllocationView,
  AnyBatchList,
  AuditPage,
  BatchView,
  DeviceCost,
  DeviceView,
  ErrorView,
  HistoryView,
  ModelView,
  NodeView,
  PartitionView,
  Principal,
} from './api-types';

// Every call sends the admin key kept in sessionStorage (gone when the tab closes).

const KEY = 'tandem.adminKey';

export const session = {
  get key(): string {
    return sessionStorage.getItem(KEY) ?? '';
  },
  set(key: string): void {
    sessionStorage.setItem(KEY, key);
  },
  clear(): void {
    sessionStorage.removeItem(KEY);
  },
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Listeners told when the server answers 401 (the shell shows the login form). */
export const authEvents = new EventTarget();

/** What each GET answers (path without `/admin/api`, before any query string). */
export interface GetEndpoints {
  '/whoami': Pick<Principal, 'id' | 'name' | 'scopes'>;
  '/nodes': { nodes: NodeView[] };
  '/devices': { devices: DeviceView[] };
  '/hybrid/cost': { batchCost: DeviceCost[] };
  '/allocations': { allocations: AllocationView[] };
  '/models': { models: ModelView[] };
  '/batches': Pick<AnyBatchList, 'items' | 'nextCursor'>;
  '/audit': AuditPage;
  '/history': HistoryView;
}

type Query = Record<string, string | number | undefined>;

function withQuery(path: string, q?: Query): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q ?? {})) if (v !== undefined) p.set(k, String(v));
  const s = p.toString();
  return s ? `${path}?${s}` : path;
}

async function call<T>(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (session.key) headers.authorization = `Bearer ${session.key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(`/admin/api${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'the gateway did not answer (network error)');
  }
  let data: unknown = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  const error = typeof data === 'object' && data !== null && 'error' in data && typeof data.error === 'string' ? data.error : undefined;
  if (res.status === 401) authEvents.dispatchEvent(new CustomEvent('unauthorized', { detail: error }));
  if (!res.ok) throw new ApiError(res.status, error ?? `HTTP ${res.status}`);
  return data as T;
}

/**
 * Fetches a file the API serves (with the key, which a plain link could not send) and hands it
 * to the browser as a download.
 */
async function download(path: string, filename: string): Promise<void> {
  const res = await fetch(`/admin/api${path}`, { headers: session.key ? { authorization: `Bearer ${session.key}` } : {}, cache: 'no-store' });
  if (!res.ok) {
    const body = (await res.json().catch(() => null)) as { error?: string } | null;
    throw new ApiError(res.status, body?.error ?? `HTTP ${res.status}`);
  }
  const url = URL.createObjectURL(await res.blob());
  try {
    const a = document.createElement('a');
    a.href = url;
    a.download = filename;
    a.click();
  } finally {
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }
}

export const api = {
  download,
  get<P extends keyof GetEndpoints>(path: P, query?: Query): Promise<GetEndpoints[P]> {
    return call('GET', withQuery(path, query));
  },
  batch(id: string): Promise<BatchView> {
    return call('GET', `/batches/${encodeURIComponent(id)}`);
  },
  batchErrors(id: string, limit: number): Promise<{ items: ErrorView[]; nextCursor: string | null }> {
    return call('GET', withQuery(`/batches/${encodeURIComponent(id)}/errors`, { limit }));
  },
  controlBatch(id: string, action: 'pause' | 'resume' | 'cancel'): Promise<BatchView> {
    return call('POST', `/batches/${encodeURIComponent(id)}/${action}`);
  },
  setPartition(d: DeviceView, change: { online: number; batch: number; batchMayBorrow: boolean }): Promise<PartitionView> {
    return call('PUT', `/devices/${encodeURIComponent(d.node)}/${encodeURIComponent(d.localId)}/partition`, change);
  },
  setDrained(d: DeviceView, drained: boolean): Promise<DeviceView> {
    return call('POST', `/devices/${encodeURIComponent(d.node)}/${encodeURIComponent(d.localId)}/${drained ? 'drain' : 'undrain'}`);
  },
  setReplicaLimits(model: string, limits: { min_replicas: number; max_replicas: number }): Promise<ModelView> {
    return call('PUT', `/models/${encodeURIComponent(model)}/limits`, limits);
  },
};
