/**
 * One orchestrator step, the way every runbook orchestrator runs it (deployUat, deployProd, refreshUat,
 * and the approval gate's calls in deployOdooSh): publish the step in the custom status, time it on
 * the orchestration clock, call the activity (with the caller's retry policy or without), and turn a
 * failure — thrown by the activity, or returned as `{ failed: { code, message } }` — into a
 * `StepFailure` naming the step.
 *
 * What differs between the orchestrators is passed in, not decided here:
 *  - which steps are retried: `retried(step)` (deployUat: STEP_RETRY, deployProd: all but NO_RETRY,
 *    refreshUat: none unless the call says so), overridable per call by the 4th argument;
 *  - the retry policy: `retry()` is read at each call, because the orchestrators replace it once the
 *    prepare step returned the settings;
 *  - the custom status: `show(step)` is the caller's (each has its own status shape);
 *  - the code and message of a thrown failure: `codeOf` / `reasonOf` (deploy-plan's for the deploys,
 *    refreshUat's own — `REFRESH.FAILED`, first line — for the refresh);
 *  - `durations` is optional (deployOdooSh publishes none).
 *
 * Here and not in shared/domain: this is orchestrator code (it yields durable Tasks), so it belongs
 * under functions/orchestrators/ where the lint rules that keep orchestrators deterministic (no Date,
 * setTimeout, process, Math.random, Node builtins, SDKs, adapters, config) apply to it; and it needs
 * the activities' `ActivityFailure` type, which a domain module should not import from functions/.
 */
import type { OrchestrationContext, RetryOptions, Task } from 'durable-functions';
import type { ActivityFailure } from '../activities/deploy';

/** A step failure carried through an orchestrator (step + code + message). */
export class StepFailure<S extends string = string> extends Error {
  constructor(
    readonly step: S,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface StepOptions<S extends string> {
  /** move the custom status to `step` (called before the activity is scheduled) */
  show(step: S): void;
  /** per-step time in ms on the orchestration clock, added up when a step runs more than once */
  durations?: Record<string, number>;
  /** the retry policy of retried steps, read at each call */
  retry(): RetryOptions;
  /** whether `step` is retried when the call does not say */
  retried(step: S): boolean;
  /** `[CODE]` of a thrown activity error (with the caller's default) */
  codeOf(err: unknown): string;
  /** the message of a thrown activity error, as the caller reports it */
  reasonOf(err: unknown): string;
}

/** Runs one step; `retried` overrides the caller's per-step default. Throws `StepFailure`. */
export type Step<S extends string> = <T = unknown>(
  name: S,
  activity: string,
  payload: unknown,
  retried?: boolean,
) => Generator<Task, T, unknown>;

export function stepRunner<S extends string>(context: OrchestrationContext, o: StepOptions<S>): Step<S> {
  const now = () => context.df.currentUtcDateTime.getTime();
  return function* step<T>(
    name: S,
    activity: string,
    payload: unknown,
    retried?: boolean,
  ): Generator<Task, T, unknown> {
    o.show(name);
    const t0 = now();
    const took = () => {
      if (o.durations) o.durations[name] = (o.durations[name] ?? 0) + now() - t0;
    };
    let out: unknown;
    try {
      out =
        (retried ?? o.retried(name))
          ? yield context.df.callActivityWithRetry(activity, o.retry(), payload)
          : yield context.df.callActivity(activity, payload);
    } catch (err) {
      took();
      throw new StepFailure(name, o.codeOf(err), o.reasonOf(err));
    }
    took();
    const failed = (out as { failed?: ActivityFailure } | null)?.failed;
    if (failed) throw new StepFailure(name, failed.code, failed.message);
    return out as T;
  };
}
