// A long list drawn in part. Of a list of same-size items laid out by a CSS
// grid with fixed rows (the agent tiles, the call rows), only the rows on
// screen and some around them are displayed; the other items stay in the DOM,
// kept up to date, but `hidden`, and padding holds their place so the list
// keeps its full height and the scroll bar stays true. The browser then lays
// out and paints a screenful of items, not 2,000, whatever changes.
//
// measure() reads the layout and must run before the frame's first DOM write;
// range() then says which items to display, which of them are on screen (their
// timers tick; the others' wait until they come on screen), and sets the padding.
//
// A TV (mode 'fit') never scrolls: it displays the rows that fit in the clip from
// the top, no more, and its owner says how many did not fit.

// Displayed around the visible rows: half a screen above and below (scrolling
// is smooth, the window catches up each frame), and at least this many items,
// so a small board is displayed whole.
const OVERSCAN_SCREENS = 0.5;
const OVERSCAN_ITEMS = 24;

export class ListWindow {
  // list: the grid whose children are the items; clip: the element that
  // scrolls or clips it, if not only the page.
  // mode: true (a page that scrolls), 'fit' (a TV) or false (every item displayed).
  constructor(list, clip, mode) {
    this.list = list;
    this.clip = clip || null;
    this.fit = mode === 'fit';
    this.enabled = !!mode && !!list;
    this.geometry = null;
    this.padTop = '';
    this.padBottom = '';
  }

  measure() {
    if (!this.enabled) return;
    const box = this.list.getBoundingClientRect();
    if (!box.width) {
      this.geometry = null;
      return;
    }
    let top = 0;
    let bottom = window.innerHeight;
    if (this.clip) {
      const c = this.clip.getBoundingClientRect();
      top = Math.max(top, c.top);
      bottom = Math.min(bottom, c.bottom);
    }
    const style = getComputedStyle(this.list);
    const cols = style.gridTemplateColumns.split(' ').filter((s) => s.endsWith('px')).length;
    const pitch = parseFloat(style.gridAutoRows) + (parseFloat(style.rowGap) || 0);
    const origin = box.top + (parseFloat(style.borderTopWidth) || 0);
    const gap = parseFloat(style.rowGap) || 0;
    this.geometry = cols > 0 && pitch > 0
      ? { cols, pitch, gap, top: top - origin, bottom: bottom - origin, screen: Math.max(0, bottom - top) }
      : null;
  }

  // Of `count` items in display order: [start, end) to display and
  // [seenStart, seenEnd) on screen, within it.
  range(count) {
    const g = this.enabled ? this.geometry : null;
    if (!g) {
      this.pad(0, 0);
      return { start: 0, end: count, seenStart: 0, seenEnd: count };
    }
    if (this.fit) {
      const fits = Math.max(0, Math.floor((g.bottom + g.gap + 1) / g.pitch)) * g.cols;
      const end = Math.min(count, fits);
      this.pad(0, 0);
      return { start: 0, end, seenStart: 0, seenEnd: end };
    }
    const rows = Math.ceil(count / g.cols);
    const over = Math.max(Math.ceil((g.screen * OVERSCAN_SCREENS) / g.pitch), Math.ceil(OVERSCAN_ITEMS / g.cols));
    const top = Math.floor(g.top / g.pitch);
    const bottom = Math.ceil(g.bottom / g.pitch);
    const first = clamp(top - over, 0, rows);
    const last = clamp(bottom + over, first, rows);
    this.pad(first * g.pitch, (rows - last) * g.pitch);
    const at = (row) => Math.min(count, row * g.cols);
    return {
      start: at(first), end: at(last),
      seenStart: at(clamp(top, first, last)), seenEnd: at(clamp(bottom, first, last)),
    };
  }

  pad(top, bottom) {
    const t = top ? `${top}px` : '';
    const b = bottom ? `${bottom}px` : '';
    if (t !== this.padTop) {
      this.padTop = t;
      this.list.style.paddingTop = t;
    }
    if (b !== this.padBottom) {
      this.padBottom = b;
      this.list.style.paddingBottom = b;
    }
  }
}

// Keep `set` (and each item's `flag`) equal to list[start, end): enter() for
// the items that come in, leave() for those that go.
export function follow(list, start, end, set, flag, enter, leave) {
  for (const item of set) {
    if (item.slot < start || item.slot >= end) {
      item[flag] = false;
      set.delete(item);
      if (leave) leave(item);
    }
  }
  for (let i = start; i < end; i += 1) {
    const item = list[i];
    if (item[flag]) continue;
    item[flag] = true;
    set.add(item);
    if (enter) enter(item);
  }
}

function clamp(v, lo, hi) {
  return Math.min(hi, Math.max(lo, v));
}
