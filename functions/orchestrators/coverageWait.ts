/**
 * Coverage wait: a durable timer per commit whose coverage status was missing or pending at merge
 * time. At the deadline the gate is evaluated once more (activity `intakeGateTimeout`): a commit still
 * waiting is blocked with "no coverage status after N min"; one decided meanwhile (a status or
 * check_run event re-ran the gate) is left alone. Instance id `coverage-wait-<sha>` (idempotent start).
 */
import * as df from 'durable-functions';
import type { OrchestrationContext, OrchestrationHandler } from 'durable-functions';

export interface CoverageWaitInput {
  sha: string;
  /** ISO time at which the gate gives up */
  deadline: string;
}

/** Timers are chained in steps of at most 3 days (Durable JS limits one timer to 6 days). */
const STEP_MS = 3 * 24 * 3600 * 1000;

export const coverageWait: OrchestrationHandler = function* (context: OrchestrationContext) {
  const input = context.df.getInput() as CoverageWaitInput;
  // eslint-disable-next-line no-restricted-globals -- parsing a timestamp from the input is deterministic
  const deadline = Date.parse(input.deadline);
  for (;;) {
    const now = context.df.currentUtcDateTime.getTime();
    if (now >= deadline) break;
    // eslint-disable-next-line no-restricted-globals -- a Date built from replayed values, not the clock
    yield context.df.createTimer(new Date(Math.min(deadline, now + STEP_MS)));
  }
  return yield context.df.callActivity('intakeGateTimeout', { sha: input.sha });
};

df.app.orchestration('coverageWait', coverageWait);
