// The screen's words and number/time formats. The catalogue comes from the
// page's boot JSON (the same file the server renders from), so no string
// lives in this code.

let catalogue = {};
let locale = 'vi-VN';
let timeZone;
let intFmt;
let clockFmt;
let hourFmt;

export function setupI18n(boot) {
  catalogue = boot.catalogue || {};
  locale = boot.locale || 'vi-VN';
  timeZone = boot.timezone || undefined;
  intFmt = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
  const opts = { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' };
  try {
    clockFmt = new Intl.DateTimeFormat(locale, { ...opts, timeZone });
    hourFmt = new Intl.DateTimeFormat('en-US', { hour: 'numeric', hourCycle: 'h23', timeZone });
  } catch {
    // An unknown zone name: the browser's own zone is the best we can do.
    timeZone = undefined;
    clockFmt = new Intl.DateTimeFormat(locale, opts);
    hourFmt = new Intl.DateTimeFormat('en-US', { hour: 'numeric', hourCycle: 'h23' });
  }
}

// t('key', {name: value}) -> the string with {name} replaced; a missing key shows itself.
export function t(key, params) {
  const text = Object.prototype.hasOwnProperty.call(catalogue, key) ? catalogue[key] : key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

export function fmtInt(n) {
  return n == null || !Number.isFinite(n) ? t('kpi.none') : intFmt.format(n);
}

// Seconds as m:ss, or h:mm:ss from an hour on; the same in every language.
export function fmtDuration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return t('kpi.none');
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

// The same duration in words, for a screen reader: "1 phút 36 giây".
export function fmtSpoken(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return '';
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const params = { h, m, s: s % 60 };
  return t(h ? 'spoken.hms' : m ? 'spoken.ms' : 'spoken.s', params);
}

// hh:mm:ss of an epoch-ms time, in the PBX's zone.
export function fmtClock(ms) {
  return clockFmt.format(new Date(ms));
}

// The PBX-local hour (0..23) of an epoch-ms time: calls_per_hour is indexed by it.
export function hourOf(ms) {
  return Number(hourFmt.format(new Date(ms))) % 24;
}

export function fmtAge(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 120) return t('age.seconds', { n: fmtInt(s) });
  if (s < 7200) return t('age.minutes', { n: fmtInt(Math.floor(s / 60)) });
  return t('age.hours', { n: fmtInt(Math.floor(s / 3600)) });
}
