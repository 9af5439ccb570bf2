import { api, ApiError, authEvents, session } from './api';
import { allocationsView } from './allocations';
import { auditView } from './audit';
import { batchDetailView } from './batch-detail';
import { batchesView } from './batches';
import { devicesView } from './devices';
import { $, setText, type Loader, type ViewContext } from './dom';
import { modelsView } from './models';

// Shell: login, tabs (#devices, #allocations, …), a batch's page (#batch/<id>), and a ≤ 2 s
// poll of the visible view.

const POLL_MS = 1500;
const TABS = ['devices', 'allocations', 'models', 'batches', 'audit'] as const;
type Tab = (typeof TABS)[number];
type Route = { tab: Tab; view: Tab | 'batch'; batchId?: string };
const BATCH_ROUTE = /^batch\/([0-9a-f-]{36})$/i;

let route: Route = { tab: 'devices', view: 'devices' };
let timer: ReturnType<typeof setTimeout> | undefined;
let signedIn = false;
let busy = 0;

function showError(msg: string | null): void {
  const b = $('#banner');
  setText($('.banner-text', b), msg ?? '');
  b.classList.toggle('visible', Boolean(msg));
}

function parseRoute(hash: string): Route {
  const m = BATCH_ROUTE.exec(hash);
  if (m) return { tab: 'batches', view: 'batch', batchId: m[1]!.toLowerCase() };
  const tab = (TABS as readonly string[]).includes(hash) ? (hash as Tab) : 'devices';
  return { tab, view: tab };
}

async function refresh(): Promise<void> {
  if (!signedIn) return;
  clearTimeout(timer);
  // A background tab stops polling; visibilitychange restarts it.
  if (document.hidden) return;
  const shown = route;
  try {
    await loaders[shown.view]();
    if (shown === route) {
      showError(null);
      setText($('#status'), `updated ${new Date().toLocaleTimeString(undefined, { hour12: false })}`);
    }
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) showError(`${shown.view}: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    if (signedIn) timer = setTimeout(() => void refresh(), POLL_MS);
  }
}

function select(hash: string, focus = false): void {
  route = parseRoute(hash);
  for (const t of TABS) {
    const tab = $(`#tab-${t}`);
    tab.setAttribute('aria-selected', String(t === route.tab));
    tab.tabIndex = t === route.tab ? 0 : -1;
    $(`#view-${t}`).hidden = t !== route.view;
  }
  $('#view-batch').hidden = route.view !== 'batch';
  if (route.batchId) batchDetail.show(route.batchId);
  if (focus) $(`#tab-${route.tab}`).focus();
  const want = route.batchId ? `batch/${route.batchId}` : route.view;
  if (location.hash !== `#${want}`) history.replaceState(null, '', `#${want}`);
  void refresh();
}

function showLogin(message?: string): void {
  signedIn = false;
  clearTimeout(timer);
  $('#app').hidden = true;
  $('#login').hidden = false;
  $('#who').hidden = true;
  $('#tabs').hidden = true;
  setText($('#login-error'), message ?? '');
  const key = $<HTMLInputElement>('#login-key');
  key.value = '';
  key.focus();
}

async function enter(): Promise<void> {
  const me = await api.get('/whoami');
  if (!me.scopes.includes('admin')) throw new ApiError(403, `key "${me.name}" lacks the admin scope`);
  signedIn = true;
  // Only the key's name and scopes are shown, never the key.
  setText($('#who-name'), `${me.name} (${me.scopes.join(', ')})`);
  $('#who').hidden = false;
  $('#tabs').hidden = false;
  $('#login').hidden = true;
  $('#app').hidden = false;
  select(location.hash.slice(1));
}

authEvents.addEventListener('unauthorized', (ev) => {
  session.clear();
  const detail = (ev as CustomEvent<string | undefined>).detail;
  showLogin(signedIn ? `Signed out: ${detail ?? 'the key was rejected'}` : undefined);
});

$('#login-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const key = $<HTMLInputElement>('#login-key').value.trim();
  if (!key) {
    setText($('#login-error'), 'Enter an admin API key.');
    return;
  }
  session.set(key);
  enter().catch((e: unknown) => {
    session.clear();
    const msg = e instanceof Error ? e.message : String(e);
    showLogin(e instanceof ApiError && e.status === 401 ? `Sign-in failed: ${msg}` : msg);
  });
});

$('#logout').addEventListener('click', () => {
  session.clear();
  showLogin('Signed out.');
});

$('#banner-close').addEventListener('click', () => showError(null));

const tabs = $('#tabs');
tabs.addEventListener('click', (ev) => {
  const tab = ev.target instanceof Element ? ev.target.closest<HTMLElement>('[role="tab"]') : null;
  if (tab?.dataset.view) select(tab.dataset.view);
});
tabs.addEventListener('keydown', (ev) => {
  const i = TABS.indexOf(route.tab);
  if (ev.key === 'ArrowRight') select(TABS[(i + 1) % TABS.length]!, true);
  else if (ev.key === 'ArrowLeft') select(TABS[(i + TABS.length - 1) % TABS.length]!, true);
  else return;
  ev.preventDefault();
});
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) void refresh();
});
window.addEventListener('hashchange', () => signedIn && select(location.hash.slice(1)));

const ctx: ViewContext = {
  refresh,
  setBusy(on) {
    busy += on ? 1 : -1;
    document.body.classList.toggle('busy', busy > 0);
  },
};
const batchDetail = batchDetailView($('#view-batch'), ctx);
const loaders: Record<Route['view'], Loader> = {
  devices: devicesView($('#view-devices'), ctx),
  allocations: allocationsView($('#view-allocations')),
  models: modelsView($('#view-models'), ctx),
  batches: batchesView($('#view-batches'), ctx),
  audit: auditView($('#view-audit')),
  batch: () => batchDetail.load(),
};

// With auth off (or a key still in this tab's session) whoami answers and no login is needed.
enter().catch((e: unknown) => showLogin((e instanceof ApiError && e.status === 401) || !session.key ? undefined : e instanceof Error ? e.message : String(e)));
