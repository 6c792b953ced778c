// The supervisors' tools for the board itself: a message to the wall (for every screen
// or one team's, with an expiry), the levels of a figure (for the floor, a team or a
// hotline; or back to the config's), and how the alerts' deliveries are going. Each
// change is a JSON POST with the CSRF token (wallboard/web/board_api.py).

import { t, fmtInt } from './i18n.js';
import { setText } from './dom.js';

export async function postJson(boot, path, body) {
  try {
    const response = await fetch(`${boot.base || ''}${path}`, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': boot.csrf || '' },
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    return response.ok ? { ok: true, ...answer } : { ok: false, message: answer.message || t('error.NETWORK') };
  } catch {
    return { ok: false, message: t('error.NETWORK') };
  }
}

export class BoardTools {
  constructor(root, store, boot, toast) {
    this.store = store;
    this.boot = boot;
    this.toast = toast;
    this.teamChoice = root.querySelector('[data-team-choice]');
    this.scopeChoice = root.querySelector('[data-scope-choice]');
    this.alertStatus = root.querySelector('[data-alert-status]');
    this.known = '';
    const wall = root.querySelector('[data-form="wall"]');
    if (wall) {
      wall.addEventListener('submit', async (e) => {
        e.preventDefault();
        const form = new FormData(wall);
        const answer = await postJson(boot, '/api/wall', {
          text: form.get('text'), team: form.get('team') || null, minutes: Number(form.get('minutes')),
        });
        this.say(answer, t('wall.posted'));
        if (answer.ok) wall.querySelector('[data-wall-text]').value = '';
      });
    }
    const levels = root.querySelector('[data-form="threshold"]');
    if (levels) {
      levels.addEventListener('submit', async (e) => {
        e.preventDefault();
        const form = new FormData(levels);
        const answer = await postJson(boot, '/api/thresholds', {
          scope: form.get('scope'), figure: form.get('figure'),
          warn: Number(form.get('warn')), alarm: Number(form.get('alarm')),
        });
        this.say(answer, t('threshold.saved'));
      });
      levels.querySelector('[data-threshold-reset]').addEventListener('click', async () => {
        const form = new FormData(levels);
        const answer = await postJson(boot, '/api/thresholds', {
          scope: form.get('scope'), figure: form.get('figure'), reset: true,
        });
        this.say(answer, t('threshold.saved'));
      });
    }
  }

  remove(id) {
    postJson(this.boot, `/api/wall/${encodeURIComponent(id)}/remove`, {}).then((a) => this.say(a, t('wall.removed')));
  }

  say(answer, ok) {
    if (this.toast) this.toast.show(answer.ok ? ok : answer.message, answer.ok);
  }

  render() {
    const { teams, hotlines, alerts } = this.store;
    const names = Object.keys(teams).sort();
    const lines = Object.keys(hotlines).sort();
    const known = JSON.stringify([names, lines]);
    if (known !== this.known) {
      this.known = known;
      if (this.teamChoice) fillChoices(this.teamChoice, names.map((n) => [n, n]));
      if (this.scopeChoice) {
        fillChoices(this.scopeChoice, [...names.map((n) => [`team:${n}`, n]),
          ...lines.map((n) => [`hotline:${n}`, `☎ ${n}`])]);
      }
    }
    if (this.alertStatus) {
      const parts = Object.entries(alerts || {}).map(([channel, s]) => t('alerts.channel', {
        channel, sent: fmtInt(s.sent), failed: fmtInt(s.failed), queued: fmtInt(s.queued),
      }) + (s.last_error ? ` (${s.last_error})` : ''));
      setText(this.alertStatus, parts.length ? `${t('alerts.title')}: ${parts.join(' · ')}` : '');
      this.alertStatus.hidden = parts.length === 0;
    }
  }
}

// Keep the first option (everyone / the floor), replace the rest, keep the choice.
function fillChoices(select, pairs) {
  const chosen = select.value;
  while (select.options.length > 1) select.remove(1);
  for (const [value, label] of pairs) select.add(new Option(label, value));
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}
