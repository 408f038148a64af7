/**
 * The deploy lane's two activities (functions/orchestrators/deployLane.ts). Both are idempotent: the
 * durable engines run an activity at least once.
 *
 * - `laneStartWork`: starts the `laneWork` orchestration that runs one piece of work of a lane
 *   (instance id `lanework-<work id>`), unless it exists already (then it has been started: nothing to do).
 * - `laneWorkEnded`: reports the end of that work to the lane, as a `deploy-requested` event
 *   `{ workEnded, outcome, error?, token }`, raised again until the lane took it (`raiseUntilTaken`).
 *   A lane that no longer exists (terminated, purged) has nobody to tell: that is logged, not retried.
 */
import * as df from 'durable-functions';
import type { InvocationContext } from '@azure/functions';
import {
  DEPLOY_REQUESTED,
  LANE_WORK_ORCHESTRATOR,
  laneWorkInstanceId,
  type LaneInput,
  type LaneWorkEnded,
  type LaneWorkInput,
} from '../orchestrators/deployLane';
import {
  DELIVERY,
  raiseUntilTaken,
  readInstance,
  type DeliveryTiming,
} from '../../shared/adapters/durable-status';
import { messageOf, PipelineError } from '../../shared/domain/errors';

const clientInput = df.input.durableClient();
const GONE = /404|410|not found|no instance|not running|completed|terminated|failed/i;

export async function laneStartWork(
  input: LaneWorkInput,
  context: InvocationContext,
): Promise<'started' | 'exists'> {
  if (!input || typeof input.instanceId !== 'string' || typeof input.orchestrator !== 'string')
    throw new PipelineError(
      'LANE.BAD_WORK',
      'laneStartWork needs { lane, orchestrator, instanceId, request }',
    );
  const client = df.getClient(context);
  const id = laneWorkInstanceId(input.instanceId);
  if (await readInstance(client, id, { showInput: false })) return 'exists';
  try {
    await client.startNew(LANE_WORK_ORCHESTRATOR, { instanceId: id, input });
  } catch (err) {
    // started by an earlier run of this activity between our read and our start
    if (/exist|409|conflict/i.test(messageOf(err)) && (await readInstance(client, id, { showInput: false })))
      return 'exists';
    throw err;
  }
  context.log(`lane ${input.lane}: started ${id} (${input.orchestrator} ${input.instanceId})`);
  return 'started';
}

export async function laneWorkEnded(
  input: LaneWorkEnded & { lane: string },
  context: InvocationContext,
  timing: DeliveryTiming = DELIVERY,
): Promise<'raised' | 'lane-gone'> {
  const { lane, ...ended } = input;
  const client = df.getClient(context);
  let delivery: Awaited<ReturnType<typeof raiseUntilTaken>>;
  try {
    // raised until the lane took it (a later generation lists the work in `done`): an end dropped by the
    // lane's continueAsNew would leave the lane waiting for work that is over
    delivery = await raiseUntilTaken(
      client,
      lane,
      DEPLOY_REQUESTED,
      ended,
      (state) => {
        const done: unknown = (state as LaneInput | undefined)?.done;
        return Array.isArray(done) && done.includes(ended.workEnded);
      },
      timing,
    );
  } catch (err) {
    if (
      !GONE.test(messageOf(err)) ||
      (await readInstance(client, lane, { showInput: false }))?.runtimeStatus === 'Running'
    )
      throw err;
    delivery = { outcome: 'gone', raised: 1 };
  }
  if (delivery.outcome === 'gone') {
    context.warn(`lane ${lane} is gone: the end of ${ended.workEnded} (${ended.outcome}) was not reported`);
    return 'lane-gone';
  }
  const times = delivery.raised > 1 ? ` (raised ${delivery.raised} times)` : '';
  if (delivery.outcome === 'unconfirmed')
    context.warn(
      `lane ${lane} has not taken the end of ${ended.workEnded} within ${Math.round(timing.giveUpMs / 1000)} s${times}: it waits for the lane's next wait`,
    );
  else if (times) context.log(`lane ${lane} took the end of ${ended.workEnded}${times}`);
  return 'raised';
}

df.app.activity('laneStartWork', { extraInputs: [clientInput], handler: laneStartWork });
df.app.activity('laneWorkEnded', { extraInputs: [clientInput], handler: laneWorkEnded });
