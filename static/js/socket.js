// The live connection: one WebSocket, reconnected with capped exponential
// backoff and full jitter (so a restart does not bring every screen back in
// the same millisecond), a watchdog for silent deaths, and resync requests.
// A reconnect says where the screen's copy stands (?epoch=E&seq=N), so the server
// sends only the patches it missed when it still holds them, not a whole snapshot.

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;
const SILENCE_MS = 25000; // the server pings every ~10 s
const AUTH_CLOSE_CODES = new Set([4401, 4000]);

export class LiveSocket {
  // handlers: onMessage(msg), onOpen(), onDown(), onAuthClosed(code), resumeFrom() -> {epoch, seq} | null
  constructor(path, handlers) {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.base = `${scheme}//${location.host}${path}`;
    this.h = handlers;
    this.ws = null;
    this.attempt = 0;
    this.lastHeard = 0;
    this.timer = null;
    this.stopped = false;
    this.watchdog = setInterval(() => this.checkSilence(), 1000);
  }

  start() {
    this.connect();
  }

  connect() {
    this.timer = null;
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    this.lastHeard = Date.now();
    ws.onopen = () => {
      this.lastHeard = Date.now();
      if (this.h.onOpen) this.h.onOpen();
    };
    ws.onmessage = (ev) => {
      this.lastHeard = Date.now();
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      // A snapshot proves the whole path works: start the backoff afresh.
      if (msg && msg.type === 'snapshot') this.attempt = 0;
      if (msg && typeof msg === 'object') this.h.onMessage(msg);
    };
    ws.onclose = (ev) => this.closed(ws, ev.code);
  }

  closed(ws, code) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.h.onDown();
    if (AUTH_CLOSE_CODES.has(code) && this.h.onAuthClosed && this.h.onAuthClosed(code)) return;
    this.retry();
  }

  url() {
    const at = this.h.resumeFrom ? this.h.resumeFrom() : null;
    if (!at || at.epoch == null || at.seq == null) return this.base;
    const sep = this.base.includes('?') ? '&' : '?';
    return `${this.base}${sep}epoch=${encodeURIComponent(at.epoch)}&seq=${encodeURIComponent(at.seq)}`;
  }

  retry() {
    if (this.stopped || this.timer) return;
    const cap = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
    this.attempt += 1;
    this.timer = setTimeout(() => this.connect(), Math.random() * cap);
  }

  checkSilence() {
    const ws = this.ws;
    if (!ws || Date.now() - this.lastHeard < SILENCE_MS) return;
    // A socket that hears nothing is dead even if the browser has not noticed:
    // drop it now rather than wait for the close handshake.
    ws.onopen = ws.onmessage = ws.onclose = null;
    try {
      ws.close();
    } catch {
      // already closing
    }
    this.closed(ws, 1006);
  }

  // The page is back (from sleep, or the network is): connect now if down, and drop a
  // socket that has heard nothing for too long.
  wake() {
    if (this.stopped) return;
    if (this.ws) {
      this.checkSilence();
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.attempt = 0;
    this.connect();
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  resync() {
    this.send({ type: 'resync' });
  }
}
