/**
 * When the approval gate's wait wakes (`nextWake`): the loop of functions/orchestrators/approval-gate.ts
 * arms one durable timer per turn at `nextWake(now, deadline, reminder not yet sent)`. Walking that loop
 * here shows what a real clock cannot wait for in a test: a window longer than 6 days is cut into legs
 * of at most 6 days, re-armed after each, the reminder and the deadline met exactly.
 * (test/integration/deploy-prod-orchestration.test.ts checks the first leg on the real engine.)
 */
import {
  MAX_TIMER_MS,
  MIN_TIMER_LEAD_MS,
  nextWake,
  timerFireAt,
} from '../../functions/orchestrators/approval-gate';

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2026, 5, 1, 8, 0, 0);

/** the gate's loop with no decision arriving: every timer fires on time; the wakes, the reminder's turn */
function walk(windowMs: number, reminderMs = 0) {
  const deadline = T0 + windowMs;
  const reminderAt = reminderMs > 0 && reminderMs < windowMs ? deadline - reminderMs : undefined;
  let reminded = reminderAt === undefined;
  let now = T0;
  const wakes: number[] = [];
  let remindedAt: number | undefined;
  for (let turn = 0; turn < 100; turn++) {
    if (!reminded && now >= reminderAt!) {
      reminded = true;
      remindedAt = now;
      continue;
    }
    if (now >= deadline) return { wakes: wakes.map((w) => w - T0), remindedAt, expiredAt: now };
    const wake = nextWake(now, deadline, reminded ? undefined : reminderAt);
    expect(wake).toBeGreaterThan(now); // always a step forward: the loop ends
    expect(wake - now).toBeLessThanOrEqual(MAX_TIMER_MS);
    wakes.push(wake);
    now = wake;
  }
  throw new Error('the loop did not end');
}

describe('nextWake: the approval wait in timers of at most 6 days', () => {
  it('MAX_TIMER_MS is 6 days (the durable-functions limit for one timer)', () => {
    expect(MAX_TIMER_MS).toBe(6 * DAY);
  });

  it('a window within 6 days is one timer to the deadline', () => {
    expect(nextWake(T0, T0 + 24 * HOUR)).toBe(T0 + 24 * HOUR);
    expect(nextWake(T0, T0 + MAX_TIMER_MS)).toBe(T0 + MAX_TIMER_MS);
    expect(walk(36_000)).toEqual({ wakes: [36_000], remindedAt: undefined, expiredAt: T0 + 36_000 });
  });

  it('a 10-day window: a 6-day leg, then the loop re-arms to the deadline (expires on day 10, not before)', () => {
    expect(nextWake(T0, T0 + 10 * DAY)).toBe(T0 + 6 * DAY);
    expect(nextWake(T0 + 6 * DAY, T0 + 10 * DAY)).toBe(T0 + 10 * DAY);
    expect(walk(10 * DAY)).toEqual({
      wakes: [6 * DAY, 10 * DAY],
      remindedAt: undefined,
      expiredAt: T0 + 10 * DAY,
    });
  });

  it('the longest window (APPROVAL_TIMEOUT_HOURS=720, 30 days): five 6-day legs', () => {
    expect(walk(720 * HOUR).wakes).toEqual([6, 12, 18, 24, 30].map((d) => d * DAY));
  });

  it('a timer that fires late starts the next leg from when it fired, still at most 6 days', () => {
    expect(nextWake(T0 + 6 * DAY + 5000, T0 + 30 * DAY)).toBe(T0 + 12 * DAY + 5000);
    expect(nextWake(T0 + 29 * DAY, T0 + 30 * DAY)).toBe(T0 + 30 * DAY);
  });

  it('the reminder is a wake of its own, within the legs; after it the wait goes on to the deadline', () => {
    // 10 days, reminder an hour before: 6-day leg, to the reminder, then to the deadline
    expect(walk(10 * DAY, HOUR)).toEqual({
      wakes: [6 * DAY, 10 * DAY - HOUR, 10 * DAY],
      remindedAt: T0 + 10 * DAY - HOUR,
      expiredAt: T0 + 10 * DAY,
    });
    // 24 h, reminder an hour before (the defaults): the reminder at 23 h, the expiry at 24 h
    expect(walk(24 * HOUR, HOUR).wakes).toEqual([23 * HOUR, 24 * HOUR]);
    // a reminder further away than 6 days is reached through a leg first
    expect(nextWake(T0, T0 + 20 * DAY, T0 + 10 * DAY)).toBe(T0 + 6 * DAY);
    // once sent (undefined), it no longer shortens the wait
    expect(nextWake(T0 + 10 * DAY, T0 + 12 * DAY)).toBe(T0 + 12 * DAY);
  });
});

describe('timerFireAt: a timer the provider delivers early is re-armed about once, not every few ms', () => {
  // The Azure Storage provider: a timer's message is enqueued when the episode commits (here 30 ms after
  // the orchestration's now), becomes visible after its delay cut to whole seconds, and the next episode
  // starts 30 ms after that. (Seen on the real engine: a 2 s timer let the orchestration go on after ≈ 1.2 s.)
  const EPISODE_MS = 30;
  const delivered = (armedAt: number, fireAt: number) => {
    const enqueued = armedAt + EPISODE_MS;
    return enqueued + Math.max(0, Math.floor((fireAt - enqueued) / 1000)) * 1000 + EPISODE_MS;
  };
  /** the gate's turns until `now` reaches `wake`: how many timers it armed, and when it woke */
  const untilWake = (fireAtOf: (now: number, wake: number) => number, ahead: number) => {
    const wake = T0 + ahead;
    let now = T0;
    let timers = 0;
    while (now < wake && timers < 1000) {
      timers++;
      now = delivered(now, fireAtOf(now, wake));
    }
    return { timers, lateMs: now - wake };
  };

  it('armed at the wake itself, the model shows the loop the real engine showed (a timer every 60 ms)', () => {
    expect(untilWake((_now, wake) => wake, 36_000).timers).toBeGreaterThan(10);
  });

  it.each([500, 1_000, 1_900, 2_500, 15_000, 36_000, 6 * DAY])(
    'a wake %i ms ahead takes at most 2 timers and is met at most MIN_TIMER_LEAD_MS late',
    (ahead) => {
      const { timers, lateMs } = untilWake(timerFireAt, ahead);
      expect(timers).toBeLessThanOrEqual(2);
      expect(lateMs).toBeGreaterThanOrEqual(0);
      expect(lateMs).toBeLessThanOrEqual(MIN_TIMER_LEAD_MS);
    },
  );

  it('a wake further ahead than the lead is the timer itself; a nearer one is pushed to the lead', () => {
    expect(MIN_TIMER_LEAD_MS).toBe(2000);
    expect(timerFireAt(T0, T0 + 36_000)).toBe(T0 + 36_000);
    expect(timerFireAt(T0, T0 + 2_000)).toBe(T0 + 2_000);
    expect(timerFireAt(T0, T0 + 1_999)).toBe(T0 + 2_000);
    expect(timerFireAt(T0, T0 - 5_000)).toBe(T0 + 2_000);
  });
});
