// The TV: full screen on the first touch of a key or the screen, the screen kept
// awake (Screen Wake Lock, asked again whenever the page comes back), tiles sized
// to fill the screen (TileFit), an optional rotation between views, night mode
// and a slow shift of the whole picture against burn-in (night.js).

const VIEWS = ['agents', 'today'];

// The renderer's options on a TV (main.js; bench/web/bench.js measures the same):
// nothing scrolls, the lists display what fits and say how many did not.
export function kioskOptions() {
  return {
    sort: 'ext', filterState: 'all', windowed: 'fit',
    fitTiles: (tiles) => new TileFit(tiles),
  };
}

export function setupKiosk(boot, main) {
  const doc = document.documentElement;
  const goFull = () => {
    if (!document.fullscreenElement && doc.requestFullscreen) doc.requestFullscreen().catch(() => {});
  };
  window.addEventListener('click', goFull);
  window.addEventListener('keydown', goFull);
  keepAwake();
  if (boot.rotate_seconds > 0) rotate(main, boot.rotate_seconds);
}

function keepAwake() {
  if (!('wakeLock' in navigator)) return;
  let lock = null;
  const request = () => {
    if (document.visibilityState !== 'visible' || lock) return;
    navigator.wakeLock.request('screen').then((l) => {
      lock = l;
      lock.addEventListener('release', () => { lock = null; });
    }).catch(() => {});
  };
  // The browser releases the lock when the page is hidden; ask again on return.
  document.addEventListener('visibilitychange', request);
  request();
}

// Tile shapes, in ems of the tile's own font: the full tile (name and extension,
// state and timer, the call or today's tally) and, when many agents must fit, the
// dense one (name and extension, state and timer).
const SHAPES = [
  { density: 'full', rowsEm: 5.4, minWidthEm: 11 },
  { density: 'dense', rowsEm: 3.1, minWidthEm: 9 },
];
const GAP_EM = 0.3;
const NAME_EM = 1.2; // a name is this much larger than the tile's font (board.css)

// The font size and columns that fill the grid with every tile, as large as they
// go and never so narrow that a name is cut: the widest name sets the tiles' width.
// Below a readable floor the tiles stop shrinking; those that do not fit are counted
// in the panel's header (tiles.js).
export class TileFit {
  constructor(tiles) {
    this.tiles = tiles;
    this.grid = tiles.grid;
    this.width = 0;
    this.height = 0;
    this.namesVersion = -1;
    this.widthEm = SHAPES[0].minWidthEm;
    this.key = '';
    this.canvas = document.createElement('canvas').getContext('2d');
    this.resized = true;
    // The grid's size without a layout read in the frame: it changes with the window only.
    new ResizeObserver((entries) => {
      const box = entries[entries.length - 1].contentRect;
      this.width = box.width;
      this.height = box.height;
      this.resized = true;
      if (this.onResize) this.onResize();
    }).observe(this.grid);
  }

  // After a frame's writes; true when the tiles changed size (draw again).
  update() {
    if (!this.width || !this.height) return false;
    if (this.namesVersion !== this.tiles.namesVersion) {
      this.namesVersion = this.tiles.namesVersion;
      this.widthEm = this.measureNames();
    } else if (!this.resized) {
      return false;
    }
    this.resized = false;
    const n = Math.max(1, this.tiles.filter.sorted.length);
    const vh = window.innerHeight || this.height;
    const floor = Math.max(11, 0.012 * vh);
    const ceiling = 0.05 * vh;
    let pick = null;
    for (const shape of SHAPES) {
      const wEm = Math.max(shape.minWidthEm, this.widthEm);
      const f = best(n, this.width, this.height, wEm + GAP_EM, shape.rowsEm + GAP_EM);
      pick = { shape, wEm, f: Math.min(ceiling, Math.max(floor, f)) };
      if (f >= Math.max(16, 0.017 * vh)) break; // large enough in full; else dense
    }
    const f = Math.floor(pick.f * 4) / 4;
    const cols = Math.max(1, Math.floor((this.width + GAP_EM * f) / ((pick.wEm + GAP_EM) * f)));
    const key = `${f}|${cols}|${pick.shape.density}`;
    if (key === this.key) return false;
    this.key = key;
    const style = this.grid.style;
    style.setProperty('--tile-f', `${f}px`);
    style.setProperty('--tile-cols', String(cols));
    style.setProperty('--tile-rows-em', String(pick.shape.rowsEm));
    this.grid.dataset.density = pick.shape.density;
    return true;
  }

  // The widest name with its extension, in ems of the tile's font.
  measureNames() {
    const family = getComputedStyle(this.grid).fontFamily;
    const ctx = this.canvas;
    ctx.font = `650 100px ${family}`;
    let name = 0;
    for (const text of this.tiles.names()) name = Math.max(name, ctx.measureText(text).width);
    ctx.font = `400 100px ${family}`;
    let ext = 0;
    for (const tile of this.tiles.items.values()) ext = Math.max(ext, ctx.measureText(tile.el.dataset.agent).width);
    // name (1.2em), a gap, the extension (.9em), the padding and the state stripe, a margin
    return (name / 100) * NAME_EM + 0.5 + (ext / 100) * 0.9 + 1.9 + 0.4;
  }
}

// The largest font (px) at which n tiles of w x h ems fill a box, in some number of columns.
function best(n, width, height, w, h) {
  let f = 0;
  for (let cols = 1; cols <= n; cols += 1) {
    const rows = Math.ceil(n / cols);
    f = Math.max(f, Math.min(width / (cols * w), height / (rows * h)));
    if (width / (cols * w) < f) break; // more columns only make them narrower
  }
  return f;
}

function rotate(main, seconds) {
  let i = 0;
  main.dataset.rotate = VIEWS[i];
  setInterval(() => {
    i = (i + 1) % VIEWS.length;
    main.dataset.rotate = VIEWS[i];
  }, seconds * 1000);
}
