/**
 * Process supervision of `npm run demo`: whatever the demo starts (the sandbox with dockerd, the
 * registry and both VMs' sshd; the fake GitHub and Slack; the embedded host) is registered here with
 * its stop, and Ctrl-C (SIGINT), `kill` (SIGTERM, e.g. a service manager or a CI timeout) and a closed
 * terminal (SIGHUP) all end it the same way: every part stopped, newest first, once, then the demo's
 * temp folder removed and the process exits (130 / 143 / 129).
 *
 * A part that is still STARTING when the signal comes is not forgotten: `track()` keeps its promise,
 * and the stop waits for it to settle and then stops what it started (a sandbox half-way through
 * starting has dockerd running already; dropping it would leave dockerd behind).
 */
import { rmSync } from 'node:fs';

export interface DemoSupervisor {
  /**
   * Start a part: `starting` is its start, `stop` how to stop what it returns. Returns the started
   * value; a part that starts after the stop began is stopped as soon as it is there.
   */
  track<T>(name: string, starting: Promise<T>, stop: (part: T) => Promise<unknown>): Promise<T>;
  /** stop every part (newest first) and remove the folders; the same promise on every call */
  stopAll(): Promise<void>;
}

const EXIT_CODE = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
type StopSignal = keyof typeof EXIT_CODE;

export function superviseDemo(o: {
  /** folders the demo made; removed last */
  dirs: string[];
  say: (line: string) => void;
  /** how the process ends after a signal (tests may watch it; the demo exits) */
  exit?: (code: number) => void;
  signals?: readonly StopSignal[];
}): DemoSupervisor {
  const parts: Array<{ name: string; settled: Promise<(() => Promise<unknown>) | undefined> }> = [];
  let stopping: Promise<void> | undefined;

  const stopAll = () =>
    (stopping ??= (async () => {
      for (const p of [...parts].reverse()) {
        const stop = await p.settled; // a part still starting: wait until it is there, then stop it
        if (!stop) continue;
        await stop().catch((err: unknown) =>
          o.say(`    could not stop ${p.name}: ${err instanceof Error ? err.message : String(err)}`),
        );
      }
      for (const d of o.dirs) rmSync(d, { recursive: true, force: true });
    })());

  const exit = o.exit ?? ((code: number) => process.exit(code));
  for (const sig of o.signals ?? (['SIGINT', 'SIGTERM', 'SIGHUP'] as const))
    process.once(sig, () => {
      o.say(
        `\n${sig}: stopping the demo (host, sandbox VMs, dockerd, registry) and removing ${o.dirs.join(', ')}`,
      );
      void stopAll().then(() => exit(EXIT_CODE[sig]));
    });

  return {
    track<T>(name: string, starting: Promise<T>, stop: (part: T) => Promise<unknown>): Promise<T> {
      const settled = starting.then(
        (part) => () => stop(part),
        () => undefined, // a start that failed has nothing to stop (it cleans up after itself)
      );
      parts.push({ name, settled });
      // started after the stop began (the story was still running): stop it as soon as it is there
      if (stopping) void settled.then((s) => s?.().catch(() => undefined));
      return starting;
    },
    stopAll,
  };
}
