// Boot: read the server's JSON, wire the store, renderer, socket and controls.

import { setupI18n } from './i18n.js';
import { observeServerNow, serverNow } from './clock.js';
import { Store } from './store.js';
import { Renderer } from './render.js';
import { LiveSocket } from './socket.js';
import { setupActions, Toast } from './actions.js';
import { setupKiosk, kioskOptions } from './kiosk.js';
import { setupSound, alertSound } from './sound.js';
import { setupNight } from './night.js';
import { setupTokens } from './tokens.js';
import { setupBoardView } from './boardview.js';

const boot = JSON.parse(document.getElementById('boot').textContent);
setupI18n(boot);
const kiosk = boot.layout === 'kiosk';
const root = document.body;
const remember = (key, fallback) => localStorage.getItem(key) || fallback;

setupTheme(kiosk, root.querySelector('[data-theme-toggle]'));

const store = new Store();
const toast = new Toast(root.querySelector('[data-toast]'));
// Teams and hotlines, levels, the wall (issue 16): drawn after the rest of each frame.
const boardView = setupBoardView(root, store, boot, toast);
const renderer = new Renderer(root, store, {
  thresholds: boot.thresholds,
  staleAfter: boot.stale_after,
  actions: boot.actions,
  locale: boot.locale,
  sort: remember('wb.sort', 'state'),
  filterState: remember('wb.filter', 'all'),
  hidden: boot.hidden_extensions,
  onWarn: boot.actions ? alertSound : null,
  extras: boardView,
  view: boot.view || null,
  windowed: true,
  // The TV never scrolls and fills the screen with its tiles (kiosk.js).
  ...(kiosk ? kioskOptions() : {}),
});

let resyncing = false;
let live = false; // connected and caught up since the last drop
const socket = new LiveSocket(boot.ws_path, {
  onOpen() {},
  onMessage(msg) {
    if (msg.type === 'snapshot') {
      if (upgraded(msg.version)) return;
      observeServerNow(msg.state && msg.state.now);
      store.snapshot(msg.seq ?? (msg.state && msg.state.seq), msg.state || {}, msg.fields);
      renderer.setConnected(true);
      live = true;
      resyncing = false;
    } else if (msg.type === 'patch') {
      // After asking for a resync, wait for the snapshot; patches until then are moot.
      if (resyncing) return;
      if (store.patch(msg, serverNow()) === 'gap') {
        resyncing = true;
        socket.resync();
      }
      renderer.schedule();
    } else if (msg.type === 'ping') {
      observeServerNow(msg.now);
      store.heard(msg.at);
      // A resumed connection gets the patches it missed and then a ping at its seq.
      if (!live && !resyncing && store.ready && msg.seq === store.seq) {
        live = true;
        renderer.setConnected(true);
      }
      renderer.schedule();
    }
  },
  onDown() {
    resyncing = false;
    live = false;
    renderer.setConnected(false);
  },
  resumeFrom() {
    return store.ready && !resyncing ? { epoch: store.epoch, seq: store.seq } : null;
  },
  onAuthClosed() {
    // A TV has no one to log in: keep retrying (the token may come back).
    if (kiosk) return false;
    location.assign(`${boot.base || ''}/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    return true;
  },
});
socket.start();
setInterval(() => renderer.tick(), 1000);
// Back from sleep or from a network outage: reconnect now, not at the end of a backoff.
document.addEventListener('visibilitychange', () => {
  renderer.tick();
  if (document.visibilityState === 'visible') socket.wake();
});
window.addEventListener('online', () => socket.wake());

// The server was upgraded: this page's code is not the server's, load the new one.
// At most once in 10 minutes, should a cache keep serving the old page.
function upgraded(version) {
  if (!version || !boot.version || version === boot.version) return false;
  const last = Number(sessionStorage.getItem('wb.reloaded') || 0);
  if (Date.now() - last < 600000) return false;
  sessionStorage.setItem('wb.reloaded', String(Date.now()));
  location.reload();
  return true;
}

if (kiosk) {
  setupKiosk(boot, root.querySelector('[data-views]'));
  setupNight(boot);
} else {
  setupControls();
  setupSound(root.querySelector('[data-sound-toggle]'));
  if (boot.actions) {
    setupActions(boot, root, toast);
    setupTokens(boot, root, toast);
  }
}

function setupControls() {
  const state = root.querySelector('[data-filter-state]');
  const search = root.querySelector('[data-filter-search]');
  const sort = root.querySelector('[data-sort]');
  if (state) {
    state.value = renderer.filter.state;
    state.addEventListener('change', () => {
      localStorage.setItem('wb.filter', state.value);
      renderer.setFilter({ state: state.value });
    });
  }
  if (search) {
    search.addEventListener('input', () => renderer.setFilter({ q: search.value.trim().toLowerCase() }));
  }
  if (sort) {
    sort.value = renderer.sort;
    sort.addEventListener('change', () => {
      localStorage.setItem('wb.sort', sort.value);
      renderer.setSort(sort.value);
    });
  }
}

// Tab: the stored choice, else the system's; the TV is always dark.
function setupTheme(isKiosk, button) {
  const html = document.documentElement;
  if (isKiosk) {
    html.dataset.theme = 'dark';
    return;
  }
  const system = () => (matchMedia('(prefers-color-scheme: light)').matches ? 'light' : 'dark');
  const apply = (theme) => {
    html.dataset.theme = theme;
    if (button) button.setAttribute('aria-pressed', String(theme === 'dark'));
  };
  apply(localStorage.getItem('wb.theme') || system());
  if (button) {
    button.addEventListener('click', () => {
      const next = html.dataset.theme === 'dark' ? 'light' : 'dark';
      localStorage.setItem('wb.theme', next);
      apply(next);
    });
  }
}
