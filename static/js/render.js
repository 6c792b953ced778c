// The board: keyed DOM updates, batched once per animation frame, by the parts
// that each draw one thing: the agent tiles (tiles.js, in the order and filter of
// filters.js), the call rows (callrows.js), the timers in both (timers.js), the
// KPIs (kpis.js), the charts (charts.js) and how fresh it all is (freshness.js).
// PBX text only ever goes in through textContent (dom.js).
//
// A frame reads the layout once, first (where the lists are on screen), then
// only writes, and writes a text or attribute only when it changes.

import { fmtClock, hourOf } from './i18n.js';
import { serverNow } from './clock.js';
import { drawHourly, drawStatus } from './charts.js';
import { setText } from './dom.js';
import { AgentFilter } from './filters.js';
import { Tiles } from './tiles.js';
import { CallRows } from './callrows.js';
import { Timers } from './timers.js';
import { Kpis } from './kpis.js';
import { Freshness } from './freshness.js';

export class Renderer {
  constructor(root, store, opts) {
    this.store = store;
    this.opts = opts;
    this.agentFilter = new AgentFilter(opts);
    this.tiles = new Tiles(root, store, opts, this.agentFilter);
    this.rows = new CallRows(root, store, opts);
    this.timers = new Timers([this.tiles, this.rows]);
    // The TV sizes its tiles to fill the screen (kiosk.js).
    this.fit = opts.fitTiles ? opts.fitTiles(this.tiles) : null;
    if (this.fit) this.fit.onResize = () => this.schedule();
    this.kpis = new Kpis(root, store, opts);
    this.freshness = new Freshness(root, store, opts, this.kpis.items);
    this.clockEl = root.querySelector('[data-clock]');
    this.domainEl = root.querySelector('[data-domain]');
    this.hourlyEl = root.querySelector('[data-chart="hourly"]');
    this.statusEl = root.querySelector('[data-chart="status"]');
    if (opts.windowed) {
      // Scrolling the page or the calls list shows other items (capture: element scrolls do not bubble).
      const onScroll = () => this.schedule();
      document.addEventListener('scroll', onScroll, { capture: true, passive: true });
      window.addEventListener('resize', onScroll, { passive: true });
    }
    this.pending = false;
    this.tickDue = true;
    this.chartHour = -1;
  }

  get sort() {
    return this.agentFilter.sort;
  }

  get filter() {
    return this.agentFilter.filter;
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => this.flush());
  }

  setConnected(connected) {
    this.freshness.connected = connected;
    this.tick();
  }

  // Once a second: timers, ages and the clock move even when no data arrives.
  tick() {
    this.tickDue = true;
    this.schedule();
  }

  setSort(sort) {
    this.agentFilter.setSort(sort);
    this.schedule();
  }

  setFilter(filter) {
    this.agentFilter.setFilter(filter);
    this.schedule();
  }

  flush() {
    this.pending = false;
    const started = performance.now();
    // The one layout read of the frame, before any write.
    this.tiles.measure();
    this.rows.measure();
    const dirty = this.store.takeDirty();
    const now = serverNow();
    if (dirty.all) {
      this.tiles.sync(now);
      this.rows.sync(now);
    } else {
      for (const ext of dirty.agents) this.tiles.upsert(ext, now);
      for (const id of dirty.calls) this.rows.upsert(id, now);
      if (dirty.agents.size) this.rows.agentsChanged(dirty.agents, now);
    }
    this.tiles.draw(now);
    this.rows.draw(now, dirty.all || dirty.calls.size > 0);
    if (dirty.all || dirty.keys.has('domain')) setText(this.domainEl, this.store.domain || '');
    const hour = hourOf(now);
    if (dirty.all || dirty.keys.has('stats') || dirty.keys.has('status') || hour !== this.chartHour) {
      this.chartHour = hour;
      this.drawCharts(hour);
    }
    const ticked = this.tickDue;
    if (ticked) {
      this.tickDue = false;
      this.timers.tick(now);
      setText(this.clockEl, fmtClock(now));
    }
    if (this.timers.move(now)) this.schedule();
    this.freshness.render(now);
    this.kpis.render(now);
    if (this.opts.extras) this.opts.extras.render(now, ticked);
    if (this.fit && this.fit.update()) this.schedule();
    if (this.opts.onFrame) this.opts.onFrame(performance.now() - started, ticked);
  }

  drawCharts(hour) {
    const stats = this.store.stats;
    if (this.hourlyEl) {
      drawHourly(this.hourlyEl, stats ? stats.calls_per_hour : null,
        stats ? stats.answered_per_hour : null, hour);
    }
    if (this.statusEl) drawStatus(this.statusEl, this.store.status ? this.store.status.counts : null);
  }
}
