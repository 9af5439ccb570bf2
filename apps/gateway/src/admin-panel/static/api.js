// Every call sends the admin key kept in sessionStorage (gone when the tab closes).

const KEY = 'tandem.adminKey';

export const session = {
  get key() {
    return sessionStorage.getItem(KEY) ?? '';
  },
  set(key) {
    sessionStorage.setItem(KEY, key);
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Listeners told when the server answers 401 (the app shows the login form). */
export const authEvents = new EventTarget();

export async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (session.key) headers.authorization = `Bearer ${session.key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(`/admin/api${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'the gateway did not answer (network error)');
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (res.status === 401) authEvents.dispatchEvent(new CustomEvent('unauthorized', { detail: data?.error }));
  if (!res.ok) throw new ApiError(res.status, data?.error ?? `HTTP ${res.status}`);
  return data;
}
