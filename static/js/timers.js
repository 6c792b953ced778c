// The once-a-second move of every timer. Every warning is checked at once (it may
// sound); the timers on screen (100 or more: a screenful moves every second) are
// rewritten over the next frames, at most TIMER_FRAMES of them however many there
// are, so none of those frames goes over budget.

const TIMERS_PER_FRAME = 32;
const TIMER_FRAMES = 4;

export class Timers {
  // parts: the tiles and the call rows. Each has `items` (a Map), `seen` (the items
  // on screen), `warn(item, now)` and `timerText(item, now)`.
  constructor(parts) {
    this.parts = parts;
    this.queues = parts.map(() => []);
    this.batch = TIMERS_PER_FRAME;
  }

  tick(now) {
    let count = 0;
    this.parts.forEach((part, i) => {
      for (const item of part.items.values()) part.warn(item, now);
      this.queues[i] = [...part.seen];
      count += this.queues[i].length;
    });
    this.batch = Math.max(TIMERS_PER_FRAME, Math.ceil(count / TIMER_FRAMES));
  }

  // This frame's share of the timers; true while some are left for the next.
  move(now) {
    let budget = this.batch;
    this.parts.forEach((part, i) => {
      if (!budget || !this.queues[i].length) return;
      const batch = this.queues[i].splice(0, budget);
      budget -= batch.length;
      for (const item of batch) {
        if (item.seen) part.timerText(item, now); // else scrolled off or gone since the tick
      }
    });
    return this.queues.some((queue) => queue.length > 0);
  }
}
