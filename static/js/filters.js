// Which agent tiles are displayed, and in what order: the sort (by state, name or
// extension) and the filter (a state, and a search), kept as the list of tiles
// that pass it in display order, which the window (windowing.js) draws from.
//
// CSS `order` places a tile without moving DOM nodes, so a state change re-sorts
// one tile instead of the whole grid. Tiles are ranked (by name or extension) only
// when names, the sort or the set of tiles change.

import { AGENT_STATES } from './rules.js';

const STATE_RANK = Object.fromEntries(AGENT_STATES.map((state, i) => [state, i]));
const RANK_SPAN = 100000;

export class AgentFilter {
  constructor(opts) {
    this.sort = opts.sort || 'state';
    this.filter = { state: opts.filterState || 'all', q: '' };
    // Extensions that are not agents (display.hide_extensions, the supervisors' phones).
    this.hidden = new Set((opts.hidden || []).map(String));
    this.collator = new Intl.Collator(opts.locale || undefined, { numeric: true, sensitivity: 'base' });
    this.ranksDirty = true;
    this.filterDirty = false;
    this.sortedDirty = true;
    this.sorted = []; // the tiles that pass, in display order
  }

  setSort(sort) {
    this.sort = sort;
    this.ranksDirty = true;
  }

  setFilter(filter) {
    Object.assign(this.filter, filter);
    this.filterDirty = true;
  }

  // A tile came or went.
  changed() {
    this.ranksDirty = true;
    this.sortedDirty = true;
  }

  // A whole new state: every tile is ranked and matched again.
  resync() {
    this.ranksDirty = true;
    this.filterDirty = true;
  }

  renamed() {
    if (this.sort === 'name') this.ranksDirty = true;
  }

  // A tile's agent changed: its place, and whether it passes.
  place(tile) {
    if (!this.ranksDirty) this.order(tile);
    this.match(tile);
  }

  // Once a frame, before the window is drawn; true when the list is new.
  update(tiles) {
    if (this.ranksDirty) this.rank(tiles);
    if (this.filterDirty) for (const tile of tiles.values()) this.match(tile);
    this.filterDirty = false;
    if (!this.sortedDirty) return false;
    this.list(tiles);
    return true;
  }

  rank(tiles) {
    this.ranksDirty = false;
    const list = [...tiles.values()];
    const key = this.sort === 'name'
      ? (x) => x.agent.name || x.agent.username || ''
      : (x) => x.agent.ext != null ? String(x.agent.ext) : '';
    list.sort((a, b) => this.collator.compare(key(a), key(b))
      || this.collator.compare(String(a.agent.ext), String(b.agent.ext)));
    list.forEach((tile, i) => {
      tile.rank = i;
      this.order(tile);
    });
  }

  order(tile) {
    const rank = tile.rank;
    const order = this.sort === 'state' ? (STATE_RANK[tile.agent.state] ?? STATE_RANK.offline) * RANK_SPAN + rank : rank;
    if (order !== tile.order) {
      tile.order = order;
      tile.el.style.order = String(order);
      this.sortedDirty = true;
    }
  }

  matches(agent) {
    if (this.hidden.has(String(agent.ext))) return false;
    const f = this.filter.state;
    if (f === 'online' && agent.state === 'offline') return false;
    if (f !== 'all' && f !== 'online' && agent.state !== f) return false;
    const q = this.filter.q;
    if (!q) return true;
    return [agent.name, agent.username, agent.ext].some((v) => v != null && String(v).toLowerCase().includes(q));
  }

  match(tile) {
    const match = this.matches(tile.agent);
    if (match !== tile.match) {
      tile.match = match;
      this.sortedDirty = true;
    }
  }

  list(tiles) {
    this.sortedDirty = false;
    const list = [];
    for (const tile of tiles.values()) {
      tile.slot = -1;
      if (tile.match) list.push(tile);
    }
    list.sort((a, b) => a.order - b.order);
    list.forEach((tile, i) => { tile.slot = i; });
    this.sorted = list;
  }
}
