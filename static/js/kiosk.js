// The TV: full screen on the first touch of a key or the screen, the screen
// kept awake (Screen Wake Lock), tiles made denser when they do not fit, and
// an optional rotation between views.

const VIEWS = ['agents', 'today'];

export function setupKiosk(boot, main, grid) {
  const doc = document.documentElement;
  const goFull = () => {
    if (!document.fullscreenElement && doc.requestFullscreen) doc.requestFullscreen().catch(() => {});
  };
  window.addEventListener('click', goFull);
  window.addEventListener('keydown', goFull);
  keepAwake();
  fitDensity(grid);
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

// A TV cannot scroll: step the tile density up until the grid fits, and back
// down when agents leave.
function fitDensity(grid) {
  if (!grid) return;
  const levels = ['normal', 'compact', 'dense'];
  let level = 0;
  const check = () => {
    grid.dataset.density = levels[level];
    if (grid.scrollHeight > grid.clientHeight + 2 && level < levels.length - 1) {
      level += 1;
      grid.dataset.density = levels[level];
    } else if (level > 0) {
      grid.dataset.density = levels[level - 1];
      if (grid.scrollHeight <= grid.clientHeight + 2) level -= 1;
      grid.dataset.density = levels[level];
    }
  };
  setInterval(check, 3000);
  setTimeout(check, 500);
}

function rotate(main, seconds) {
  let i = 0;
  main.dataset.rotate = VIEWS[i];
  setInterval(() => {
    i = (i + 1) % VIEWS.length;
    main.dataset.rotate = VIEWS[i];
  }, seconds * 1000);
}
