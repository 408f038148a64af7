/**
 * Wait for long work on a VM the durable way: a short activity starts it as an `odoo-ops job` (or finds
 * the job it started before: the id is derived from the instance id and the step, so a retried or
 * replayed start never does the work twice), then durable timers and a short status activity poll it
 * until it ends or the deadline passes. No activity is held open for the length of the work, so a
 * recycled worker or a restarted host costs one poll, not the migration.
 *
 * Orchestrator code: deterministic (the clock is `currentUtcDateTime`, the ids come from the instance id).
 */
import type { OrchestrationContext, Task } from 'durable-functions';
import { vmJobDone, vmJobFailureCode, type VmJob } from '../../shared/domain/vm-job';
import { StepFailure, type Step } from './step';

export interface VmJobWait<S extends string> {
  /** the step the custom status shows and failures name */
  step: S;
  /** the start activity and its input (which carries `jobId`) */
  startActivity: string;
  startInput: { environment: string; jobId: string } & Record<string, unknown>;
  /** the status activity (`{ environment, jobId }` → VmJob) */
  statusActivity: string;
  /** seconds between polls (VM_JOB_POLL_SECONDS; 15 when unset) */
  pollSeconds?: number;
  /** minutes before the wait gives up (the job is not stopped; VM_JOB_DEADLINE_MINUTES; 180 when unset) */
  deadlineMinutes?: number;
  /** what the work is, for messages ("migration") */
  what: string;
  /**
   * Start the work again as a NEW job when it failed with one of `codes` — failures that leave nothing
   * changed (a restore whose download from Blob kept failing drops what it restored and swaps nothing):
   * `attempts` jobs in all, `waitSeconds` of durable timer before each new one, all within the one deadline.
   * Attempt n's job id is `jobIdOf(n)`; attempt 1 is `startInput.jobId`.
   */
  restart?: VmJobRestart;
}

export interface VmJobRestart {
  codes: readonly string[];
  attempts: number;
  waitSeconds: number;
  jobIdOf: (attempt: number) => string;
}

/**
 * The restores' restart rule: a storage outage that outlasts the job's own three downloads (5 and 10 s
 * apart) gets two more jobs, 60 s then 60 s later, each with fresh SAS URLs (the start activity signs them).
 */
export function restoreRestart(jobIdOf: (attempt: number) => string): VmJobRestart {
  return { codes: ['BLOB.UNAVAILABLE'], attempts: 3, waitSeconds: 60, jobIdOf };
}

export function* awaitVmJob<S extends string>(
  context: OrchestrationContext,
  step: Step<S>,
  w: VmJobWait<S>,
): Generator<Task, VmJob, unknown> {
  const now = () => context.df.currentUtcDateTime.getTime();
  const pollSeconds = w.pollSeconds ?? 15;
  const deadlineMinutes = w.deadlineMinutes ?? 180;
  const deadline = now() + deadlineMinutes * 60_000;
  const { environment } = w.startInput;
  for (let attempt = 1; ; attempt++) {
    const jobId = attempt === 1 || !w.restart ? w.startInput.jobId : w.restart.jobIdOf(attempt);
    // starting is idempotent on the job id: transient failures (SSH) are retried
    let job = yield* step<VmJob>(w.step, w.startActivity, { ...w.startInput, jobId }, true);
    while (!vmJobDone(job)) {
      if (now() >= deadline)
        throw new StepFailure(
          w.step,
          'OPS.JOB_DEADLINE',
          `[OPS.JOB_DEADLINE] the ${w.what} (VM job ${jobId}) is still ${job.state} after ${deadlineMinutes} min; it was not stopped (odoo-ops job log ${jobId})`,
        );
      // eslint-disable-next-line no-restricted-globals -- a Date built from replayed values, not the clock
      yield context.df.createTimer(new Date(Math.min(deadline, now() + Math.max(1, pollSeconds) * 1000)));
      job = yield* step<VmJob>(w.step, w.statusActivity, { environment, jobId }, true);
    }
    if (job.state === 'succeeded') return job;
    const code = vmJobFailureCode(job);
    const r = w.restart;
    const again = r !== undefined && r.codes.includes(code) && attempt < r.attempts;
    if (!again || now() + r.waitSeconds * 1000 >= deadline) {
      const tries = attempt > 1 ? ` (the ${w.what} was started ${attempt} times; last job ${jobId})` : '';
      throw new StepFailure(w.step, code, `[${code}] ${job.message}${tries}`.slice(0, 1500));
    }
    // eslint-disable-next-line no-restricted-globals -- a Date built from replayed values, not the clock
    yield context.df.createTimer(new Date(now() + r.waitSeconds * 1000));
  }
}
