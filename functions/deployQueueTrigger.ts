/**
 * Service Bus trigger on the deploy queue (sessions: one environment at a time). Hands the request to
 * the environment's lane orchestration (`lane-<env>`): starts it when it is not running, otherwise
 * raises `deploy-requested` on it. A release whose deploy instance already exists is not deployed again.
 *
 * The queue is not a way around the gate or the approvals: a message carries a known `type`, and the
 * TRIGGER decides what it runs. The only type put on this queue is `deploy-uat` (the intake's decision
 * after a passed gate; PROD, Odoo.sh, redeploys and refreshes are requested through the authenticated
 * APIs, which call the lane directly). A `deploy-uat` message is checked field by field (no field the
 * intake does not write: a message cannot name an orchestrator or an instance id; environment `uat`;
 * the image is the release image of its version) and rebuilt from the checked fields. Anything else is
 * dead-lettered with its reason (`QueueDeadLetter`): the local queue does it at once; on Service Bus the
 * Node v4 trigger cannot settle a message itself (no message actions without the preview SDK-type
 * binding), so the same error fails every delivery and Service Bus dead-letters the message after
 * `maxDeliveryCount` deliveries (`MaxDeliveryCountExceeded`), the reason being in the function's log.
 */
import { randomUUID } from 'node:crypto';
import { app, InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import type { DurableClient } from 'durable-functions';
import type { DeployRequest } from './activities/intake';
import {
  DEPLOY_REQUESTED,
  laneInstanceId,
  type LaneInput,
  type LaneRequest,
} from './orchestrators/deployLane';
import { deployInstanceId } from '../shared/domain/coverage-gate';
import { PipelineError, messageOf } from '../shared/domain/errors';
import {
  DELIVERY,
  LIVE,
  raiseUntilTaken,
  readInstance,
  type DeliveryTiming,
} from '../shared/adapters/durable-status';
// the lane's activities (start its work, report the end) live wherever requests are routed to a lane
import './activities/lane';
import { QueueDeadLetter } from '../shared/adapters/deploy-queue';
import { loadConfig, type Config } from '../shared/config';

const SHA = /^[0-9a-f]{40}$/;
const VERSION = /^[0-9]+\.[0-9]+\.[0-9]+(?:[-+][0-9A-Za-z.-]+)?$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z$/;
/** a GitHub delivery GUID, or the id of the event that decided (printable, bounded) */
const TEXT = /^[\x21-\x7e][\x20-\x7e]{0,199}$/;

/** The message types the deploy queue carries, and the orchestrator the trigger runs for each. */
export const QUEUE_MESSAGE_TYPES = { 'deploy-uat': 'deployUat' } as const;
export type QueueMessageType = keyof typeof QUEUE_MESSAGE_TYPES;
const DEPLOY_UAT_FIELDS = [
  'type',
  'environment',
  'repository',
  'version',
  'sha',
  'imageRef',
  'coverage',
  'mergedBy',
  'trigger',
  'deliveryId',
  'requestedAt',
] as const;

/** The image a release of `version` runs on UAT: `<registry host>/<repository>:uat-v<version>`, as the intake names it. */
export function releaseImageRef(config: Config, version: string): string {
  let host = '';
  try {
    host = config.REGISTRY_URL ? new URL(config.REGISTRY_URL).host : '';
  } catch {
    host = '';
  }
  return `${host ? host + '/' : ''}${config.REGISTRY_REPOSITORY ?? 'odoo-mta'}:uat-v${version}`;
}

function decode(message: unknown): unknown {
  if (typeof message !== 'string' && !(message instanceof Uint8Array)) return message;
  const text = typeof message === 'string' ? message : Buffer.from(message).toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    throw new QueueDeadLetter('deploy message is not JSON');
  }
}

/**
 * The deploy request a queue message carries, rebuilt from its checked fields; throws
 * `QueueDeadLetter` (code QUEUE.BAD_MESSAGE, not retryable) naming every problem otherwise.
 * `expectedImage(version)` is the release image the message must name (default: from the settings).
 */
export function parseDeployRequest(
  message: unknown,
  expectedImage?: (version: string) => string,
): DeployRequest {
  const m = decode(message) as Record<string, unknown> | null;
  if (!m || typeof m !== 'object' || Array.isArray(m))
    throw new QueueDeadLetter('deploy message is not an object');
  if (typeof m.type !== 'string' || !Object.hasOwn(QUEUE_MESSAGE_TYPES, m.type))
    throw new QueueDeadLetter(
      `deploy message type ${m.type === undefined ? '(none)' : JSON.stringify(String(m.type).slice(0, 40))} is not one this queue carries (${Object.keys(QUEUE_MESSAGE_TYPES).join(', ')}); PROD, Odoo.sh, redeploys and refreshes go through the authenticated APIs`,
    );
  const problems: string[] = [];
  const extra = Object.keys(m).filter((k) => !(DEPLOY_UAT_FIELDS as readonly string[]).includes(k));
  if (extra.length)
    problems.push(`fields the trigger decides or does not know: ${extra.slice(0, 10).join(', ')}`);
  if (m.environment !== 'uat') problems.push('environment must be "uat"');
  if (typeof m.version !== 'string' || !VERSION.test(m.version))
    problems.push('version must be a semantic version');
  if (typeof m.sha !== 'string' || !SHA.test(m.sha))
    problems.push('sha must be a 40-character lowercase hex commit id');
  if (typeof m.repository !== 'string' || m.repository.length > 200)
    problems.push('repository must be a string');
  if (typeof m.coverage !== 'number' || !Number.isFinite(m.coverage) || m.coverage < 0 || m.coverage > 100)
    problems.push('coverage must be a number from 0 to 100');
  if (typeof m.mergedBy !== 'string' || m.mergedBy.length > 200) problems.push('mergedBy must be a string');
  if (m.trigger !== 'push' && m.trigger !== 'workflow_run')
    problems.push('trigger must be push or workflow_run');
  if (typeof m.deliveryId !== 'string' || !TEXT.test(m.deliveryId))
    problems.push('deliveryId must be printable text');
  if (typeof m.requestedAt !== 'string' || !ISO.test(m.requestedAt))
    problems.push('requestedAt must be an ISO time');
  if (typeof m.imageRef !== 'string') problems.push('imageRef must be a string');
  else if (typeof m.version === 'string' && VERSION.test(m.version)) {
    const expected = (expectedImage ?? ((v: string) => releaseImageRef(loadConfig(process.env), v)))(
      m.version,
    );
    if (m.imageRef !== expected) problems.push(`imageRef must be the release image ${expected}`);
  }
  if (problems.length) throw new QueueDeadLetter(`deploy-uat message refused: ${problems.join('; ')}`);
  const r = m as unknown as DeployRequest;
  return {
    type: 'deploy-uat',
    environment: 'uat',
    repository: r.repository,
    version: r.version,
    sha: r.sha,
    imageRef: r.imageRef,
    coverage: r.coverage,
    mergedBy: r.mergedBy,
    trigger: r.trigger,
    deliveryId: r.deliveryId,
    requestedAt: r.requestedAt,
  };
}

/** The runtime status of an instance, or undefined when there is none. */
async function runtimeOf(client: DurableClient, instanceId: string): Promise<string | undefined> {
  const s = await readInstance(client, instanceId, { showInput: false });
  return s?.runtimeStatus ? String(s.runtimeStatus) : undefined;
}

/**
 * Route a request to the lane: 'started' | 'raised' | 'duplicate'. Safe against concurrent starts.
 *
 * It returns once the lane has TAKEN the request: the lane lists the event's id in the `seen` of its
 * next generation's input, and until then the same event is raised again every `timing.repeatMs`. An
 * event delivered in the very batch in which the lane's drain ends would otherwise be dropped by its
 * continueAsNew (docs/durable-local-engine.md, "the lane's last window"); the repeat carries the same
 * `eventId`, so a lane that took the first one ignores it. A lane busy for longer than
 * `timing.giveUpMs` (starting work through a storage outage) is not waited for: the request is buffered
 * for its next wait, and that is logged. A lane that stopped meanwhile (terminated) is started again.
 */
export async function routeToLane(
  client: DurableClient,
  request: LaneRequest,
  log: (msg: string) => void = () => undefined,
  timing: DeliveryTiming = DELIVERY,
): Promise<'started' | 'raised' | 'duplicate'> {
  const deployId = request.instanceId ?? deployInstanceId(request.environment, request.version, request.sha);
  // the lane's own retries for this work (starting it, reporting its end): LANE_RETRY_FIRST_SECONDS
  const routed: LaneRequest = {
    ...request,
    laneRetrySeconds: loadConfig(process.env).LANE_RETRY_FIRST_SECONDS,
  };
  if (await runtimeOf(client, deployId)) {
    log(`deploy ${deployId} already exists: not deploying twice`);
    return 'duplicate';
  }
  const laneId = laneInstanceId(request.environment);
  // a unique id per event: the lane ignores an event it has already taken (the real engine can hand an
  // event to the lane twice across continue-as-new)
  const eventId = randomUUID();
  /** raise until the lane took it; false when the lane stopped meanwhile (route again) */
  const deliver = async (): Promise<boolean> => {
    const { outcome, raised } = await raiseUntilTaken(
      client,
      laneId,
      DEPLOY_REQUESTED,
      { ...routed, eventId } satisfies LaneRequest,
      (input) => {
        const seen: unknown = (input as LaneInput | undefined)?.seen;
        return Array.isArray(seen) && seen.includes(eventId);
      },
      timing,
    );
    const times = raised > 1 ? ` (raised ${raised} times)` : '';
    if (outcome === 'taken') log(`${laneId} took ${DEPLOY_REQUESTED} for ${deployId}${times}`);
    else if (outcome === 'unconfirmed')
      log(
        `${laneId} has not taken ${DEPLOY_REQUESTED} for ${deployId} within ${Math.round(timing.giveUpMs / 1000)} s${times}: it waits for the lane's next wait`,
      );
    else log(`${laneId} stopped before it took ${DEPLOY_REQUESTED} for ${deployId}: routing again`);
    return outcome !== 'gone';
  };
  for (let attempt = 0; attempt < 5; attempt++) {
    const lane = await runtimeOf(client, laneId);
    if (lane && LIVE.has(lane)) {
      if (await deliver()) return 'raised';
      continue;
    }
    try {
      // The start carries the request (the lane runs it first) and its eventId as already seen; the
      // request is raised as well, which that lane then ignores. Why both: starts that race for an idle
      // lane do not all fail but one. The Durable Task extension checks for a running instance before
      // it enqueues the start, so concurrent starts all "succeed" and the engine runs the first and
      // drops the others' ExecutionStarted, inputs and all (measured: five concurrent requests, five
      // "started", four requests never seen by the lane). The raised copy is what reaches the lane
      // from a start that lost.
      await client.startNew('deployLane', {
        instanceId: laneId,
        input: {
          environment: request.environment,
          next: routed,
          done: [],
          seen: [eventId],
        } satisfies LaneInput,
      });
    } catch (err) {
      // another trigger started the lane between our status read and our start: raise instead
      if (!/exist|409|conflict/i.test(messageOf(err))) throw err;
      continue;
    }
    log(`started ${laneId} with ${deployId}`);
    if (await deliver()) return 'started';
  }
  throw new PipelineError('LANE.BUSY', `could not start or reach ${laneId}`, true);
}

export async function deployQueueTrigger(message: unknown, context: InvocationContext): Promise<void> {
  let request: DeployRequest;
  try {
    request = parseDeployRequest(message);
  } catch (err) {
    context.error(
      `deploy message ${String(context.triggerMetadata?.messageId ?? '')} dead-lettered: ${messageOf(err)}`,
    );
    throw err;
  }
  const outcome = await routeToLane(df.getClient(context), request, (m) => context.log(m));
  context.log(
    `deploy request ${String(context.triggerMetadata?.messageId ?? '')} for ${request.environment} ${request.version}: ${outcome}`,
  );
}

app.serviceBusQueue('deployQueueTrigger', {
  queueName: '%DEPLOY_QUEUE_NAME%',
  connection: 'ServiceBusConnection',
  isSessionsEnabled: true,
  extraInputs: [df.input.durableClient()],
  handler: deployQueueTrigger,
});
