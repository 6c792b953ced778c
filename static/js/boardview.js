// Issue 16's parts of the board, drawn once per frame after the rest (render.js calls
// `render`): the levels of the figures (levels.js), the teams and hotlines (groups.js),
// the wall's messages (wallmessage.js) and the supervisors' tools for them
// (boardtools.js). A screen narrowed with ?team= / ?hotline= (boot.view) says so.

import { Levels } from './levels.js';
import { Groups } from './groups.js';
import { Wall } from './wallmessage.js';
import { BoardTools } from './boardtools.js';
import { alertSound, kioskSound } from './sound.js';
import { t } from './i18n.js';

export function setupBoardView(root, store, boot, toast) {
  const kiosk = boot.layout === 'kiosk';
  const view = boot.view || null;
  store.narrowed = Boolean(view);
  if (view) document.documentElement.dataset[view.kind === 'team' ? 'team' : 'hotline'] = view.name;
  // The sound of an alarm: a supervisor's tab when its toggle is on; a TV when configured
  // (display.kiosk_sound), as far as the browser's autoplay rules let it (sound.js).
  let onAlarm = null;
  if (kiosk && boot.kiosk_sound) onAlarm = kioskSound(root);
  else if (!kiosk && boot.actions) onAlarm = alertSound;
  const levels = new Levels(root, store, { scope: view ? `${view.kind}:${view.name}` : '', onAlarm });
  const groups = new Groups(root, store, { kiosk, openByDefault: Boolean(boot.teams_configured),
    base: boot.base || '' });
  const tools = boot.actions ? new BoardTools(root, store, boot, toast) : null;
  const wall = new Wall(root, store, { supervisor: Boolean(boot.actions), onRemove: tools ? (id) => tools.remove(id) : null });
  const wrapups = new Wrapups(root, store);
  return {
    render(now, ticked) {
      wrapups.render(now);
      levels.render();
      groups.render(now, ticked);
      wall.render(now);
      if (tools) tools.render();
    },
  };
}

// After-call time (display.wrapup_seconds; the server's `wrapup`: ext -> until, ms): an
// idle agent's tile says "wrap-up" and carries data-wrapup, its data-state stays "idle".
export class Wrapups {
  constructor(root, store) {
    this.root = root;
    this.store = store;
    this.marked = new Map(); // ext -> the tile marked
  }

  render(now) {
    const wrapup = this.store.wrapup || {};
    const due = new Set();
    for (const [ext, until] of Object.entries(wrapup)) {
      const agent = this.store.agents.get(ext);
      if (until > now && agent && agent.state === 'idle') due.add(ext);
    }
    for (const [ext, tile] of this.marked) {
      if (due.has(ext) && tile.isConnected) continue;
      tile.removeAttribute('data-wrapup');
      const word = tile.querySelector('.state-word');
      if (word && tile.dataset.state === 'idle') word.textContent = t('state.idle');
      this.marked.delete(ext);
    }
    for (const ext of due) {
      const tile = this.root.querySelector(`[data-agent="${CSS.escape(ext)}"]`);
      if (!tile) continue;
      tile.setAttribute('data-wrapup', 'true');
      const word = tile.querySelector('.state-word');
      if (word && word.textContent !== t('state.wrapup')) word.textContent = t('state.wrapup');
      this.marked.set(ext, tile);
    }
  }
}
