// A TV that runs for months: at night (display.night, "20:00-07:00" in PBX time) the
// board dims to a clock and the callers waiting; day and night, the whole picture
// moves by a few pixels every few minutes so no edge burns into the panel.

import { serverNow } from './clock.js';

const SHIFT_PX = 4;

// "HH:MM-HH:MM" -> [from, to] in minutes of the day, or null.
export function parseNight(text) {
  const m = /^(\d\d):(\d\d)-(\d\d):(\d\d)$/.exec(text || '');
  return m ? [Number(m[1]) * 60 + Number(m[2]), Number(m[3]) * 60 + Number(m[4])] : null;
}

// Whether `minute` (of the day) is in the night [from, to), which may span midnight.
export function isNight(range, minute) {
  const [from, to] = range;
  return from <= to ? minute >= from && minute < to : minute >= from || minute < to;
}

export function setupNight(boot) {
  const html = document.documentElement;
  const range = parseNight(boot.night);
  if (range) {
    let fmt;
    try {
      fmt = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: boot.timezone });
    } catch {
      fmt = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    }
    const check = () => {
      const [h, m] = fmt.format(new Date(serverNow())).split(':').map(Number);
      const night = isNight(range, (h % 24) * 60 + m);
      if (night !== (html.dataset.night === 'true')) {
        if (night) html.dataset.night = 'true';
        else delete html.dataset.night;
      }
    };
    check();
    setInterval(check, 20000);
  }
  if (boot.shift_minutes > 0) {
    // A small walk around the centre, one step each time: never more than SHIFT_PX off.
    let step = 0;
    const path = [[0, 0], [1, 0], [1, 1], [0, 1], [-1, 1], [-1, 0], [-1, -1], [0, -1], [1, -1]];
    const shift = () => {
      step = (step + 1) % path.length;
      const [x, y] = path[step];
      html.style.setProperty('--shift-x', `${x * SHIFT_PX}px`);
      html.style.setProperty('--shift-y', `${y * SHIFT_PX}px`);
      html.dataset.shift = String(step);
    };
    setInterval(shift, boot.shift_minutes * 60000);
  }
}
