// Server time in the browser. Timers are computed from the server's `since`
// against the server's clock, so a TV whose own clock is minutes off still
// shows the right durations. Every snapshot and ping carries `now`.

let offset = 0;

export function observeServerNow(serverNow) {
  if (typeof serverNow === 'number' && Number.isFinite(serverNow)) {
    offset = serverNow - Date.now();
  }
}

export function serverNow() {
  return Date.now() + offset;
}

export function clockOffset() {
  return offset;
}
