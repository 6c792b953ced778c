// Supervisor actions: listen / whisper / barge / transfer on a call row,
// click-to-call and "my extension". Each is a POST with the CSRF header; the
// button shows progress and the answer appears in [data-toast].

import { t } from './i18n.js';

const TOAST_MS = 8000;
const CONFIRM = { barge: 'action.confirm.barge', transfer: 'action.confirm.transfer' };
const OK_WORDS = {
  listen: 'action.ok.listen', whisper: 'action.ok.whisper', barge: 'action.ok.barge',
  transfer: 'action.ok.transfer', call: 'action.ok.call',
};

export class Toast {
  constructor(node) {
    this.node = node;
    this.timer = null;
  }

  show(text, kind) {
    if (!this.node) return;
    this.node.textContent = text;
    this.node.dataset.kind = kind;
    this.node.hidden = false;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { this.node.hidden = true; }, TOAST_MS);
  }
}

export function setupActions(boot, root, toast) {
  const me = { ext: boot.ext || '' };
  const post = (path, body) => postJson(path, body, boot);

  const run = async (button, path, body, okKey, params) => {
    if (button) {
      button.disabled = true;
      button.setAttribute('aria-busy', 'true');
      button.dataset.pending = 'true';
    }
    toast.show(t('action.pending'), 'pending');
    try {
      const { status, data } = await post(path, body);
      if (data && data.ok) {
        toast.show(data.message || t(okKey, params), 'ok');
        return data;
      }
      const code = (data && data.error) || (status === 403 ? 'FORBIDDEN' : status === 429 ? 'RATE_LIMITED' : 'UNKNOWN');
      toast.show((data && data.message) || t(`error.${code}`, { ...params, code }), 'error');
      if (status === 401) location.assign(`${boot.base || ''}/login?next=${encodeURIComponent(location.pathname + location.search)}`);
      return null;
    } catch {
      toast.show(t('error.NETWORK'), 'error');
      return null;
    } finally {
      if (button) {
        button.disabled = button.closest('[data-monitor-leg]') != null; // as render.js upsertRow
        button.removeAttribute('aria-busy');
        delete button.dataset.pending;
      }
    }
  };

  const calls = root.querySelector('[data-calls]');
  const dialog = root.querySelector('[data-confirm]');
  if (calls) {
    calls.addEventListener('click', async (ev) => {
      const button = ev.target.closest('button[data-action]');
      const row = button && button.closest('[data-call]');
      if (!row || button.disabled) return;
      const action = button.dataset.action;
      let ext = me.ext;
      if (CONFIRM[action]) {
        const answer = await confirmDialog(dialog, t(CONFIRM[action]), action === 'transfer');
        if (answer == null) return;
        if (action === 'transfer') ext = answer;
      }
      const body = ext ? { ext } : {};
      await run(button, `${boot.base || ''}/api/calls/${encodeURIComponent(row.dataset.call)}/${action}`, body,
        OK_WORDS[action], { ext });
    });
  }

  const c2c = root.querySelector('[data-form="click2call"]');
  if (c2c) {
    c2c.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const phone = c2c.elements.phone.value.trim();
      const body = me.ext ? { phone, ext: me.ext } : { phone };
      await run(c2c.querySelector('button'), `${boot.base || ''}/api/click2call`, body, OK_WORDS.call, { ext: me.ext, phone });
    });
  }

  const myext = root.querySelector('[data-form="myext"]');
  if (myext) {
    myext.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const ext = myext.elements.ext.value.trim();
      const data = await run(myext.querySelector('button'), `${boot.base || ''}/api/me/ext`, { ext }, 'myext.saved', { ext });
      if (data) me.ext = data.ext || ext;
    });
  }
}

async function postJson(path, body, boot) {
  const url = `${path}?lang=${encodeURIComponent(boot.lang)}`;
  const response = await fetch(url, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': boot.csrf || '' },
    body: JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  return { status: response.status, data };
}

// Resolves to '' (confirmed), the extension typed (transfer), or null (cancelled).
function confirmDialog(dialog, text, askTarget) {
  return new Promise((resolve) => {
    if (!dialog || typeof dialog.showModal !== 'function') {
      resolve(null);
      return;
    }
    dialog.querySelector('[data-confirm-text]').textContent = text;
    const target = dialog.querySelector('[data-confirm-target]');
    const input = target.querySelector('input');
    target.hidden = !askTarget;
    input.required = askTarget;
    input.value = '';
    dialog.returnValue = '';
    dialog.addEventListener('close', () => {
      if (dialog.returnValue !== 'ok') resolve(null);
      else resolve(askTarget ? input.value.trim() : '');
    }, { once: true });
    dialog.showModal();
    (askTarget ? input : dialog.querySelector('[data-confirm-ok]')).focus();
  });
}
