// Messages to the wall (the server's `wall`, wallboard/board.py): each a
// [data-wall-message="<id>"] whose text is the message, put in with textContent only.
// It stands, or scrolls when it is wider than the screen (CSS; still under
// prefers-reduced-motion), and leaves at its expiry even before the server says so.
// Supervisors see the messages for one team too (named beside them) and can take any
// down; a screen narrowed to a team is sent only the messages for all and for it.

import { t } from './i18n.js';
import { el, setAttr } from './dom.js';

export class Wall {
  constructor(root, store, { supervisor = false, onRemove = null } = {}) {
    this.store = store;
    this.box = root.querySelector('[data-wall]');
    this.supervisor = supervisor;
    this.onRemove = onRemove;
    this.items = new Map(); // id -> {el, text}
    this.last = null;
  }

  render(now) {
    if (!this.box) return;
    const wall = this.store.wall || {};
    const standing = Object.values(wall)
      .filter((m) => m && m.expires > now && (m.team == null || this.supervisor || this.store.narrowed))
      .sort((a, b) => a.id - b.id);
    const ids = new Set(standing.map((m) => String(m.id)));
    for (const [id, item] of this.items) {
      if (!ids.has(id)) {
        item.el.remove();
        this.items.delete(id);
      }
    }
    for (const m of standing) {
      const id = String(m.id);
      if (this.items.has(id)) continue;
      const item = el('div', 'wall-item');
      if (m.team != null && !this.store.narrowed) {
        const to = el('span', 'wall-to');
        to.textContent = t('wall.to_team', { name: m.team });
        item.append(to);
      }
      const text = el('p', 'wall-message');
      text.setAttribute('data-wall-message', id);
      const inner = el('span', 'wall-text');
      inner.textContent = m.text;
      text.append(inner);
      item.append(text);
      if (this.supervisor && this.onRemove) {
        const button = el('button', 'btn btn-ghost wall-remove');
        button.type = 'button';
        button.textContent = t('wall.remove');
        button.addEventListener('click', () => this.onRemove(m.id));
        item.append(button);
      }
      this.box.append(item);
      this.items.set(id, { el: item, text });
      // Wider than its line: it scrolls (one read of the layout, once per message).
      requestAnimationFrame(() => setAttr(text, 'data-scroll', inner.scrollWidth > text.clientWidth ? 'true' : null));
    }
    this.box.hidden = this.items.size === 0;
  }
}
