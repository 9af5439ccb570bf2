import { api, ApiError, authEvents, session } from './api.js';
import { allocationsView } from './allocations.js';
import { auditView } from './audit.js';
import { batchesView } from './batches.js';
import { devicesView } from './devices.js';
import { modelsView } from './models.js';
import { setText } from './dom.js';

// Shell: login, tabs (#devices, #allocations, …), and a ≤ 2 s poll of the visible view.

const POLL_MS = 1500;
const VIEWS = ['devices', 'allocations', 'models', 'batches', 'audit'];
const $ = (sel) => document.querySelector(sel);

let current = 'devices';
let timer = null;
let signedIn = false;
let busy = 0;
const loaders = {};

function showError(msg) {
  const b = $('#banner');
  setText(b.querySelector('.banner-text'), msg ?? '');
  b.classList.toggle('visible', Boolean(msg));
}

function setStatus(text) {
  setText($('#status'), text);
}

async function refresh() {
  if (!signedIn) return;
  clearTimeout(timer);
  // A background tab stops polling; visibilitychange restarts it.
  if (document.hidden) return;
  const view = current;
  try {
    await loaders[view]();
    if (view === current) {
      showError(null);
      setStatus(`updated ${new Date().toLocaleTimeString(undefined, { hour12: false })}`);
    }
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) showError(`${view}: ${e.message}`);
  } finally {
    if (signedIn) timer = setTimeout(refresh, POLL_MS);
  }
}

function select(view, focus = false) {
  if (!VIEWS.includes(view)) view = 'devices';
  current = view;
  for (const v of VIEWS) {
    const tab = $(`#tab-${v}`);
    tab.setAttribute('aria-selected', String(v === view));
    tab.tabIndex = v === view ? 0 : -1;
    $(`#view-${v}`).hidden = v !== view;
  }
  if (focus) $(`#tab-${view}`).focus();
  if (location.hash !== `#${view}`) history.replaceState(null, '', `#${view}`);
  void refresh();
}

function showLogin(message) {
  signedIn = false;
  clearTimeout(timer);
  $('#app').hidden = true;
  $('#login').hidden = false;
  $('#who').hidden = true;
  $('#tabs').hidden = true;
  setText($('#login-error'), message ?? '');
  $('#login-key').value = '';
  $('#login-key').focus();
}

async function enter() {
  const me = await api('GET', '/whoami');
  if (!me.scopes.includes('admin')) throw new ApiError(403, `key "${me.name}" lacks the admin scope`);
  signedIn = true;
  // Only the key's name and scopes are shown, never the key.
  setText($('#who-name'), `${me.name} (${me.scopes.join(', ')})`);
  $('#who').hidden = false;
  $('#tabs').hidden = false;
  $('#login').hidden = true;
  $('#app').hidden = false;
  select(location.hash.slice(1) || 'devices');
}

authEvents.addEventListener('unauthorized', (ev) => {
  session.clear();
  showLogin(signedIn ? `Signed out: ${ev.detail ?? 'the key was rejected'}` : undefined);
});

$('#login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const key = $('#login-key').value.trim();
  if (!key) {
    setText($('#login-error'), 'Enter an admin API key.');
    return;
  }
  session.set(key);
  try {
    await enter();
  } catch (e) {
    session.clear();
    showLogin(e.status === 401 ? `Sign-in failed: ${e.message}` : e.message);
  }
});

$('#logout').addEventListener('click', () => {
  session.clear();
  showLogin('Signed out.');
});

$('#banner-close').addEventListener('click', () => showError(null));

const tabs = $('#tabs');
tabs.addEventListener('click', (ev) => {
  const tab = ev.target.closest('[role="tab"]');
  if (tab) select(tab.dataset.view);
});
tabs.addEventListener('keydown', (ev) => {
  const i = VIEWS.indexOf(current);
  if (ev.key === 'ArrowRight') select(VIEWS[(i + 1) % VIEWS.length], true);
  else if (ev.key === 'ArrowLeft') select(VIEWS[(i + VIEWS.length - 1) % VIEWS.length], true);
  else return;
  ev.preventDefault();
});
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) void refresh();
});
window.addEventListener('hashchange', () => signedIn && select(location.hash.slice(1)));

const ctx = {
  refresh,
  setBusy(on) {
    busy += on ? 1 : -1;
    document.body.classList.toggle('busy', busy > 0);
  },
};
loaders.devices = devicesView($('#view-devices'), ctx);
loaders.allocations = allocationsView($('#view-allocations'), ctx);
loaders.models = modelsView($('#view-models'), ctx);
loaders.batches = batchesView($('#view-batches'), ctx);
loaders.audit = auditView($('#view-audit'), ctx);

// With auth off (or a key still in this tab's session) whoami answers and no login is needed.
enter().catch((e) => showLogin(e.status === 401 || !session.key ? undefined : e.message));
