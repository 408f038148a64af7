/**
 * Service Bus trigger on the deploy queue (sessions: one environment at a time). Hands the request to
 * the environment's lane orchestration (`lane-<env>`): starts it when it is not running, otherwise
 * raises `deploy-requested` on it. A release whose deploy instance already exists is not deployed again.
 */
import { app, InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import type { DurableClient } from 'durable-functions';
import type { DeployRequest } from './activities/intake';
import { DEPLOY_REQUESTED, laneInstanceId, type LaneInput, type LaneRequest } from './orchestrators/deployLane';
import { deployInstanceId } from '../shared/domain/coverage-gate';
import { PipelineError, messageOf } from '../shared/domain/errors';
import { readInstance } from '../shared/adapters/durable-status';

const ENV = /^[a-z0-9][a-z0-9-]{0,30}$/;
const SHA = /^[0-9a-f]{40}$/;

export function parseDeployRequest(message: unknown): DeployRequest {
  let m = message;
  if (typeof m === 'string') {
    try {
      m = JSON.parse(m);
    } catch {
      throw new PipelineError('QUEUE.BAD_MESSAGE', 'deploy message is not JSON');
    }
  } else if (m instanceof Uint8Array) {
    try {
      m = JSON.parse(Buffer.from(m).toString('utf8'));
    } catch {
      throw new PipelineError('QUEUE.BAD_MESSAGE', 'deploy message is not JSON');
    }
  }
  const r = m as Partial<DeployRequest> | null;
  if (!r || typeof r !== 'object') throw new PipelineError('QUEUE.BAD_MESSAGE', 'deploy message is not an object');
  if (typeof r.environment !== 'string' || !ENV.test(r.environment)) throw new PipelineError('QUEUE.BAD_MESSAGE', 'deploy message has no valid environment');
  if (typeof r.sha !== 'string' || !SHA.test(r.sha)) throw new PipelineError('QUEUE.BAD_MESSAGE', 'deploy message has no valid sha');
  if (typeof r.version !== 'string' || !r.version) throw new PipelineError('QUEUE.BAD_MESSAGE', 'deploy message has no version');
  return r as DeployRequest;
}

/** The runtime status of an instance, or undefined when there is none. */
async function runtimeOf(client: DurableClient, instanceId: string): Promise<string | undefined> {
  const s = await readInstance(client, instanceId, { showInput: false });
  return s?.runtimeStatus ? String(s.runtimeStatus) : undefined;
}

const LIVE = new Set(['Running', 'Pending', 'ContinuedAsNew', 'Suspended']);

/** Route a request to the lane: 'started' | 'raised' | 'duplicate'. Safe against concurrent starts. */
export async function routeToLane(client: DurableClient, request: LaneRequest, log: (msg: string) => void = () => undefined): Promise<'started' | 'raised' | 'duplicate'> {
  const deployId = request.instanceId ?? deployInstanceId(request.environment, request.version, request.sha);
  if (await runtimeOf(client, deployId)) {
    log(`deploy ${deployId} already exists: not deploying twice`);
    return 'duplicate';
  }
  const laneId = laneInstanceId(request.environment);
  for (let attempt = 0; attempt < 5; attempt++) {
    const lane = await runtimeOf(client, laneId);
    if (lane && LIVE.has(lane)) {
      await client.raiseEvent(laneId, DEPLOY_REQUESTED, request);
      log(`raised ${DEPLOY_REQUESTED} on ${laneId} for ${deployId}`);
      return 'raised';
    }
    try {
      await client.startNew('deployLane', { instanceId: laneId, input: { environment: request.environment, next: request, done: [] } satisfies LaneInput });
      log(`started ${laneId} with ${deployId}`);
      return 'started';
    } catch (err) {
      // another trigger started the lane between our status read and our start: raise instead
      if (!/exist|409|conflict/i.test(messageOf(err))) throw err;
    }
  }
  throw new PipelineError('LANE.BUSY', `could not start or reach ${laneId}`, true);
}

export async function deployQueueTrigger(message: unknown, context: InvocationContext): Promise<void> {
  const request = parseDeployRequest(message); // a bad message throws: retried, then dead-lettered by Service Bus
  const outcome = await routeToLane(df.getClient(context), request, (m) => context.log(m));
  context.log(`deploy request ${String(context.triggerMetadata?.messageId ?? '')} for ${request.environment} ${request.version}: ${outcome}`);
}

app.serviceBusQueue('deployQueueTrigger', {
  queueName: '%DEPLOY_QUEUE_NAME%',
  connection: 'ServiceBusConnection',
  isSessionsEnabled: true,
  extraInputs: [df.input.durableClient()],
  handler: deployQueueTrigger,
});
