// Kiosk tokens on the supervisor's board: make one for a TV (its address is shown
// once), see when and from where each TV last used its token, revoke one (the TV's
// socket closes at once). The server keeps them (wallboard/kiosk_tokens.py).

import { t } from './i18n.js';
import { el } from './dom.js';

export function setupTokens(boot, root, toast) {
  const panel = root.querySelector('[data-kiosk-tokens]');
  if (!panel) return;
  const form = panel.querySelector('[data-form="kiosk-token"]');
  const list = panel.querySelector('[data-token-list]');
  const fresh = panel.querySelector('[data-token-new]');
  const base = boot.base || '';
  const when = (ms) => new Date(ms).toLocaleString(boot.locale, { timeZone: boot.timezone });
  const api = `${base}/api/kiosk-tokens`;
  const send = async (path, body) => {
    const response = await fetch(`${path}?lang=${encodeURIComponent(boot.lang)}`, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': boot.csrf || '' },
      body: JSON.stringify(body),
    });
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    return { ok: response.ok, data };
  };

  const load = async () => {
    const response = await fetch(api, { credentials: 'same-origin' });
    if (!response.ok) return;
    const data = await response.json();
    draw(data.tokens || []);
  };

  const draw = (tokens) => {
    const rows = tokens.map((tok) => {
      const row = el('tr');
      row.dataset.token = String(tok.id);
      row.dataset.revoked = tok.revoked_at ? 'true' : 'false';
      const cells = [
        tok.name,
        tok.created_at ? when(tok.created_at) : '',
        tok.last_seen_at ? when(tok.last_seen_at) : t('tokens.never'),
        tok.last_seen_ip || '',
        tok.revoked_at ? t('tokens.revoked') : t('tokens.active'),
      ];
      for (const text of cells) {
        const td = el('td');
        td.textContent = text;
        row.append(td);
      }
      const act = el('td');
      if (!tok.revoked_at) {
        const b = el('button', 'btn btn-sm act-barge');
        b.type = 'button';
        b.dataset.revoke = String(tok.id);
        b.textContent = t('tokens.revoke');
        b.setAttribute('aria-label', t('tokens.revoke_aria', { name: tok.name }));
        b.addEventListener('click', () => revoke(tok, b));
        act.append(b);
      }
      row.append(act);
      return row;
    });
    list.replaceChildren(...rows);
    panel.querySelector('[data-token-none]').hidden = tokens.length > 0;
  };

  const revoke = async (tok, button) => {
    // eslint-disable-next-line no-alert
    if (!window.confirm(t('tokens.confirm', { name: tok.name }))) return;
    button.disabled = true;
    const { ok, data } = await send(`${api}/${tok.id}/revoke`, {});
    toast.show(ok ? t('tokens.ok_revoked', { name: tok.name }) : (data && data.message) || t('error.UNKNOWN'),
      ok ? 'ok' : 'error');
    await load();
  };

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const name = form.elements.name.value.trim();
    if (!name) return;
    const button = form.querySelector('button');
    button.disabled = true;
    const { ok, data } = await send(api, { name });
    button.disabled = false;
    if (!ok || !data) {
      toast.show((data && data.message) || t('error.UNKNOWN'), 'error');
      return;
    }
    form.reset();
    const url = new URL(data.url, location.href).href;
    fresh.hidden = false;
    fresh.querySelector('[data-token-text]').textContent = t('tokens.created', { name: data.name });
    const out = fresh.querySelector('[data-token-url]');
    out.value = url;
    out.focus();
    out.select();
    await load();
  });

  // Loaded when opened, and again each time (last seen moves).
  panel.addEventListener('toggle', () => {
    if (panel.open) load();
  });
}
