// An optional alert tone on supervisor screens, off until the user turns it
// on (browsers only allow sound after a click anyway). Remembered per browser.

import { t } from './i18n.js';

const KEY = 'wb.sound';
const MIN_GAP_MS = 5000;
let enabled = false;
let ctx = null;
let last = 0;

export function setupSound(button) {
  if (!button) return;
  enabled = localStorage.getItem(KEY) === 'on';
  const show = () => {
    button.setAttribute('aria-pressed', String(enabled));
    button.textContent = t(enabled ? 'sound.on' : 'sound.off');
    button.title = t('sound.toggle');
  };
  show();
  button.addEventListener('click', () => {
    enabled = !enabled;
    localStorage.setItem(KEY, enabled ? 'on' : 'off');
    if (enabled) audio();
    show();
  });
}

function audio() {
  if (!ctx) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    ctx = new Ctx();
  }
  if (ctx.state === 'suspended') ctx.resume();
  return ctx;
}

// A TV configured to sound (display.kiosk_sound): on at once, but a browser plays a
// sound only after the page was interacted with, unless it allows autoplay (Chromium:
// --autoplay-policy=no-user-gesture-required, as kiosk launchers set). While it refuses,
// the TV says so ([data-sound-blocked]) and the first touch or key unlocks it.
export function kioskSound(root) {
  enabled = true;
  const note = root.querySelector('[data-sound-blocked]');
  const unlock = () => {
    const ac = audio();
    if (ac && ac.state === 'running' && note) note.hidden = true;
  };
  for (const type of ['pointerdown', 'keydown']) document.addEventListener(type, unlock, { passive: true });
  return () => {
    alertSound();
    if (note) note.hidden = !ctx || ctx.state === 'running';
  };
}

export function alertSound() {
  const now = Date.now();
  if (!enabled || now - last < MIN_GAP_MS) return;
  const ac = audio();
  if (!ac) return;
  last = now;
  for (const [start, freq] of [[0, 880], [0.22, 660]]) {
    const osc = ac.createOscillator();
    const gain = ac.createGain();
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, ac.currentTime + start);
    gain.gain.exponentialRampToValueAtTime(0.2, ac.currentTime + start + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, ac.currentTime + start + 0.18);
    osc.connect(gain).connect(ac.destination);
    osc.start(ac.currentTime + start);
    osc.stop(ac.currentTime + start + 0.2);
  }
}
