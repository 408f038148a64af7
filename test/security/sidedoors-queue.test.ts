/**
 * Attack: the deploy queue as a side door around the gate and the approvals.
 *
 * Whoever can put a message on the deploy queue (a Service Bus sender in Azure, the master key
 * locally) used to decide which orchestrator the lane ran, with which instance id and input: a
 * message naming `deployProd` with a made-up requester reached "awaiting approval" without any API
 * call. The trigger now decides: a message is a `deploy-uat` request of the intake (the only type
 * put on this queue), checked field by field, and anything else is dead-lettered with its reason.
 *
 * Real parts: the embedded host (its Service Bus REST endpoint, the persistent local queue with
 * dead-letter semantics, the real durable engine and the real deployLane + deployQueueTrigger).
 * The work the lane runs is test-only `deployUat` / `deployProd` orchestrators that record that they
 * started (a started `deployProd` is what the attacker wants).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as df from 'durable-functions';
import type { OrchestrationContext } from 'durable-functions';
import { startLocalHost, type LocalHost } from '../../local/host';
import { deployInstanceId } from '../../shared/domain/coverage-gate';
import { resetDefaultIntake, type DeployRequest } from '../../functions/activities/intake';
import { until } from '../support/until';

const Q = 'deploy-requests';
const saved = { ...process.env };
let host: LocalHost;
let tmp: string;
/** orchestrations the lane started: `<name> <instanceId>` */
const started: string[] = [];

df.app.orchestration('deployUat', function* (context: OrchestrationContext) {
  if (!context.df.isReplaying) started.push(`deployUat ${context.df.instanceId}`);
  yield context.df.createTimer(new Date(context.df.currentUtcDateTime.getTime() + 10));
  return { outcome: 'Succeeded' };
});
df.app.orchestration('deployProd', function* (context: OrchestrationContext) {
  if (!context.df.isReplaying) started.push(`deployProd ${context.df.instanceId}`);
  context.df.setCustomStatus({ step: 'awaiting approval' });
  yield context.df.waitForExternalEvent('never');
  return { outcome: 'Succeeded' };
});

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'sidedoors-queue-'));
  host = await startLocalHost({
    dataDir: tmp,
    port: 0,
    functionsDir: path.join(__dirname, '..', 'fixtures', 'intake-app'),
    log: {
      debug() {},
      info() {},
      warn() {},
      error() {},
      child() {
        return this;
      },
    },
    env: { LOG_LEVEL: 'error', DEPLOY_QUEUE_NAME: Q },
  });
}, 180000);

afterAll(async () => {
  await resetDefaultIntake();
  await host?.stop();
  process.env = saved;
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

let n = 0;
/** a deploy request exactly as the intake writes it (functions/activities/intake.ts) */
function intakeRequest(version: string): DeployRequest {
  n += 1;
  const sha = (n.toString(16) + 'b'.repeat(40)).slice(0, 40);
  return {
    type: 'deploy-uat',
    environment: 'uat',
    repository: 'acme/odoo-mta',
    version,
    sha,
    imageRef: `odoo-mta:uat-v${version}`,
    coverage: 91.5,
    mergedBy: 'alice',
    trigger: 'workflow_run',
    deliveryId: `72d3162e-cc78-11e3-81ab-4c9367dc0${String(n).padStart(3, '0')}`,
    requestedAt: new Date().toISOString(),
  };
}

/** put a message on the deploy queue the way any sender would (Service Bus REST send) */
async function enqueue(body: unknown, messageId: string): Promise<void> {
  const res = await fetch(`${host.baseUrl}/_local/servicebus/${Q}/messages`, {
    method: 'POST',
    headers: {
      'x-functions-key': host.keys.masterKey,
      'content-type': 'application/json',
      brokerproperties: JSON.stringify({ MessageId: messageId, SessionId: 'uat' }),
    },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(201);
}

const deadLettered = (messageId: string) => host.queue.deadLetters(Q).find((m) => m.messageId === messageId);

/**
 * Wait until the message is settled one way or the other: dead-lettered, or some orchestration of
 * the lane started for it (what today's code does) — so the test fails fast instead of timing out.
 */
async function outcomeOf(
  messageId: string,
  startedMatch: RegExp,
): Promise<{ dead?: ReturnType<typeof deadLettered>; ran: string[] }> {
  return until(
    `message ${messageId} settled`,
    () => {
      const dead = deadLettered(messageId);
      const ran = started.filter((s) => startedMatch.test(s));
      return dead || ran.length ? { dead, ran } : undefined;
    },
    30000,
    50,
  );
}

it('a message naming deployProd with a made-up requester never starts deployProd: it is dead-lettered with its reason', async () => {
  const forged = {
    ...intakeRequest('9.9.9'),
    orchestrator: 'deployProd',
    instanceId: 'deploy-prod-9.9.9-forged',
    requestedBy: 'mallory',
    force: true,
  };
  await enqueue(forged, 'forged-prod-1');
  const out = await outcomeOf('forged-prod-1', /deploy-prod-9\.9\.9-forged|9\.9\.9/);
  expect(out.ran).toEqual([]);
  expect(await host.durable.getStatus('deploy-prod-9.9.9-forged')).toBeUndefined();
  expect(out.dead?.deadLetterReason).toBe('QUEUE.BAD_MESSAGE');
  expect(out.dead?.deadLetterErrorDescription).toMatch(/orchestrator/);
  expect(out.dead?.deadLetterErrorDescription).toMatch(/instanceId/);
});

it('a message of a type the queue does not carry (deploy-prod) is dead-lettered, naming the type', async () => {
  const msg = { ...intakeRequest('9.9.8'), type: 'deploy-prod', environment: 'prod', requestedBy: 'mallory' };
  await enqueue(msg, 'forged-prod-2');
  const out = await outcomeOf('forged-prod-2', /9\.9\.8/);
  expect(out.ran).toEqual([]);
  expect(out.dead?.deadLetterReason).toBe('QUEUE.BAD_MESSAGE');
  expect(out.dead?.deadLetterErrorDescription).toMatch(/deploy-prod/);
});

it('a message without a type is dead-lettered', async () => {
  const { type: _type, ...untyped } = intakeRequest('9.9.7');
  await enqueue(untyped, 'untyped-1');
  const out = await outcomeOf('untyped-1', /9\.9\.7/);
  expect(out.ran).toEqual([]);
  expect(out.dead?.deadLetterErrorDescription).toMatch(/type/);
});

it('a deploy-uat message aimed at another environment (prod) is dead-lettered: deployUat never runs against PROD from the queue', async () => {
  const msg = { ...intakeRequest('9.9.6'), environment: 'prod' };
  await enqueue(msg, 'uat-to-prod-1');
  const out = await outcomeOf('uat-to-prod-1', /9\.9\.6/);
  expect(out.ran).toEqual([]);
  expect(await host.durable.getStatus('lane-prod')).toBeUndefined();
  expect(out.dead?.deadLetterErrorDescription).toMatch(/environment/);
});

it('a deploy-uat message whose image is not the release image of its version is dead-lettered', async () => {
  const msg = { ...intakeRequest('9.9.5'), imageRef: 'evil.example/backdoor:latest' };
  await enqueue(msg, 'bad-image-1');
  const out = await outcomeOf('bad-image-1', /9\.9\.5/);
  expect(out.ran).toEqual([]);
  expect(out.dead?.deadLetterErrorDescription).toMatch(/imageRef/);
});

it("the intake's own deploy-uat message still runs deployUat under the id the trigger derives", async () => {
  const req = intakeRequest('9.10.0');
  await enqueue(req, 'good-1');
  const id = deployInstanceId('uat', '9.10.0', req.sha);
  await until('deployUat started', () => started.includes(`deployUat ${id}`), 30000, 50);
  expect(deadLettered('good-1')).toBeUndefined();
});
