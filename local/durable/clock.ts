/**
 * Time source of the embedded Durable engine. The real clock arms unref'd `setTimeout`s (chained for
 * delays beyond the 24.8-day `setTimeout` limit); the test clock fires timers only when a test calls
 * `advance()`, awaiting the engine between timers so that a 24-hour approval timer runs in
 * milliseconds and deterministically.
 */
export interface Clock {
  now(): number;
  /** run fn at epoch ms (real: setTimeout, unref'd); returns a cancel function */
  at(epochMs: number, fn: () => void): () => void;
}

/** Largest delay `setTimeout` accepts (2^31 - 1 ms); longer delays would fire at once. */
const MAX_TIMEOUT_MS = 2_147_483_647;

export const realClock: Clock = {
  now: () => Date.now(),
  at(epochMs, fn) {
    let handle: NodeJS.Timeout | undefined;
    let cancelled = false;
    const arm = () => {
      if (cancelled) return;
      const delay = epochMs - Date.now();
      if (delay > MAX_TIMEOUT_MS) {
        handle = setTimeout(arm, MAX_TIMEOUT_MS);
      } else {
        handle = setTimeout(
          () => {
            if (!cancelled) fn();
          },
          Math.max(0, delay),
        );
      }
      handle.unref();
    };
    arm();
    return () => {
      cancelled = true;
      if (handle) clearTimeout(handle);
    };
  },
};

interface PendingTimer {
  at: number;
  seq: number;
  fn: () => void;
}

/** Something the test clock awaits between timers (the engine registers its `idle()`). */
export type Settler = () => Promise<void>;

export class TestClock implements Clock {
  private current: number;
  private seq = 0;
  private timers: PendingTimer[] = [];
  private settlers = new Set<Settler>();

  constructor(startMs = Date.UTC(2026, 0, 1, 8, 0, 0)) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  at(epochMs: number, fn: () => void): () => void {
    const t: PendingTimer = { at: epochMs, seq: this.seq++, fn };
    this.timers.push(t);
    return () => {
      this.timers = this.timers.filter((x) => x !== t);
    };
  }

  /** Number of armed timers (for tests). */
  pendingTimers(): number {
    return this.timers.length;
  }

  /** Called by the engine: `advance` awaits every settler before and after each timer. */
  addSettler(s: Settler): () => void {
    this.settlers.add(s);
    return () => this.settlers.delete(s);
  }

  private async settle(): Promise<void> {
    for (const s of [...this.settlers]) await s();
  }

  /** Moves time forward by `ms`, firing due timers in order and awaiting the engine between them. */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new RangeError(`TestClock.advance: ms must be >= 0, got ${ms}`);
    const target = this.current + ms;
    await this.settle();
    for (;;) {
      const due = this.timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.current = Math.max(this.current, due.at);
      due.fn();
      await this.settle();
    }
    this.current = target;
    await this.settle();
  }
}

export function isTestClock(c: Clock): c is TestClock {
  return c instanceof TestClock;
}
