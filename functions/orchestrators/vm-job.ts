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
  const { environment, jobId } = w.startInput;
  // starting is idempotent on the job id: transient failures (SSH) are retried
  let job = yield* step<VmJob>(w.step, w.startActivity, w.startInput, true);
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
  if (job.state !== 'succeeded') {
    const code = vmJobFailureCode(job);
    throw new StepFailure(w.step, code, `[${code}] ${job.message}`.slice(0, 1500));
  }
  return job;
}
