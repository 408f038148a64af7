/**
 * `POST /api/deployments` with `"target": "odoosh"` (dispatched from functions/deployments.ts):
 *   { "target": "odoosh", "branch": "staging", "version": "1.2.0", "sha"?: "<40 hex>", "force"?: false,
 *     "requestedBy"?: "...", "reason"?: "..." }
 * The commit comes from UAT's ledger (the version that ran there) unless `sha` is given. The deploy runs
 * in the branch's own lane (`lane-odoosh-<branch>`): one move of a branch at a time.
 *
 * A production-stage branch (ODOOSH_BRANCHES `name:production`) is moved only after PROD's approvals
 * (deployOdooSh asks for them), so its request is held to PROD's rules: `reason` (1-500 characters) and
 * the requester is the authenticated caller (Entra ID principal or `key:<fingerprint>`,
 * shared/domain/identity.ts) — four-eyes compares it with the approvers' identities; a body `requestedBy`
 * is only a label next to a key caller. A second request while one is live is 409 DEPLOYMENTS.BUSY; after a rejected,
 * expired or failed one, the same release can be requested again (instance id `…-r<n>`).
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { loadConfig } from '../shared/config';
import { createLedger, ledgerContainer } from '../shared/adapters/ledger';
import { errorCode, messageOf } from '../shared/domain/errors';
import {
  SHA40,
  odooShEnvironment,
  odooShInstanceId,
  parseOdooShBranches,
  type OdooShRequest,
} from '../shared/domain/odoosh';
import { LIVE } from '../shared/adapters/durable-status';
import { routeToLane } from './deployQueueTrigger';
import { requesterLabel } from './deployments-prod';
import { requestCaller } from '../shared/domain/identity';
import type { LaneRequest } from './orchestrators/deployLane';

const VERSION = /^[0-9]+\.[0-9]+\.[0-9]+(?:[-+][0-9A-Za-z.-]+)?$/;
const PERSON = /^[\p{L}\p{N}._@+\- ]{1,100}$/u;
const json = (status: number, body: unknown): HttpResponseInit => ({
  status,
  jsonBody: body,
  headers: { 'cache-control': 'no-store' },
});

export async function requestOdooShDeployment(
  body: Record<string, unknown>,
  req: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  const problems: string[] = [];
  if (body.target !== 'odoosh')
    problems.push('target must be "odoosh" (or leave it out and give an environment)');
  if (typeof body.branch !== 'string' || !body.branch)
    problems.push('branch must name an Odoo.sh branch from ODOOSH_BRANCHES');
  if (typeof body.version !== 'string' || !VERSION.test(body.version))
    problems.push('version must be a semantic version like 1.2.3');
  if (body.sha !== undefined && (typeof body.sha !== 'string' || !SHA40.test(body.sha)))
    problems.push('sha must be a 40-character lowercase hex commit id');
  if (body.force !== undefined && typeof body.force !== 'boolean')
    problems.push('force must be true or false');
  if (body.reason !== undefined && (typeof body.reason !== 'string' || body.reason.length > 500))
    problems.push('reason must be a text of at most 500 characters');
  if (
    body.requestedBy !== undefined &&
    (typeof body.requestedBy !== 'string' || body.requestedBy.length > 200)
  )
    problems.push('requestedBy must be a text of at most 200 characters');
  if (problems.length)
    return json(400, { error: 'DEPLOYMENTS.BAD_REQUEST', message: problems.join('; '), problems });

  try {
    const config = loadConfig(process.env);
    if (!config.ODOOSH_REPOSITORY)
      return json(503, {
        error: 'CONFIG.ODOOSH_MISSING',
        message: 'the Odoo.sh target is not configured: set ODOOSH_REPOSITORY (and ODOOSH_BRANCHES)',
      });
    let branches;
    try {
      branches = parseOdooShBranches(config.ODOOSH_BRANCHES ?? []);
    } catch (err) {
      return json(503, { error: 'CONFIG.ODOOSH_BRANCHES', message: messageOf(err) });
    }
    const target = branches.find((b) => b.branch === body.branch);
    if (!target)
      return json(400, {
        error: 'DEPLOYMENTS.UNKNOWN_BRANCH',
        message: `branch ${String(body.branch).slice(0, 100)} is not an Odoo.sh branch this pipeline may move (ODOOSH_BRANCHES: ${branches.map((b) => b.branch).join(', ') || 'none'})`,
      });
    const caller = requestCaller(req);
    const claimed = typeof body.requestedBy === 'string' ? body.requestedBy.trim() : undefined;
    if (target.stage === 'production') {
      // PROD's approval rules apply: why is part of what the approvers see; who is the caller
      const reason = typeof body.reason === 'string' ? body.reason.trim() : '';
      const missing: string[] = [];
      if (claimed && !PERSON.test(claimed))
        missing.push(
          'requestedBy, when given, is a label of up to 100 characters (letters, digits, . _ @ + - and spaces)',
        );
      if (!reason)
        missing.push('reason must say why, in 1 to 500 characters (production moves need approval)');
      if (missing.length)
        return json(400, {
          error: 'DEPLOYMENTS.BAD_REQUEST',
          message: missing.join('; '),
          problems: missing,
        });
    }
    const requestedBy = caller.id;
    const requestedByName = requesterLabel(caller, claimed);
    const version = body.version as string;
    const known = (await createLedger(ledgerContainer(config)).history('uat', 100)).find(
      (r) => r.version === version,
    );
    const sha = (body.sha as string | undefined) ?? known?.sha;
    if (!sha)
      return json(422, {
        error: 'DEPLOYMENTS.UNKNOWN_VERSION',
        message: `version ${version} never ran on uat: give its "sha" (a commit that passed the gate) to deploy it to Odoo.sh`,
      });
    const force = body.force === true;
    const environment = odooShEnvironment(target.branch);
    const baseId = odooShInstanceId(target.branch, version, sha);
    let instanceId = force ? `${baseId}-r${Date.now().toString(36)}` : baseId;
    const client = df.getClient(context);
    if (target.stage === 'production') {
      const earlier = (await client.getStatusAll()).filter(
        (s) =>
          s.name === 'deployOdooSh' && (s.instanceId === baseId || s.instanceId.startsWith(`${baseId}-r`)),
      );
      const live = earlier.find((s) => LIVE.has(String(s.runtimeStatus)));
      if (live)
        return json(409, {
          error: 'DEPLOYMENTS.BUSY',
          message: `a move of ${target.branch} to ${version} is already ${String(live.runtimeStatus).toLowerCase()} (awaiting approval or Odoo.sh): ${live.instanceId}`,
          id: live.instanceId,
          statusUrl: `/api/deployments/${live.instanceId}`,
        });
      const succeeded = earlier.some(
        (s) => (s.output as { outcome?: string } | undefined)?.outcome === 'Succeeded',
      );
      if (!force && !succeeded && earlier.length) instanceId = `${baseId}-r${earlier.length + 1}`; // after a rejected / expired / failed request
    }
    const request: OdooShRequest = {
      type: 'deploy-odoosh',
      branch: target.branch,
      stage: target.stage,
      repository: config.ODOOSH_REPOSITORY,
      version,
      sha,
      force,
      requestedBy,
      requestedByName,
      requesterEmails: caller.emails ?? [],
      ...(typeof body.reason === 'string' && body.reason ? { reason: body.reason } : {}),
      requestedAt: new Date().toISOString(),
      waitMinutes: config.ODOOSH_WAIT_MINUTES ?? 60,
      pollSeconds: config.ODOOSH_POLL_SECONDS ?? 30,
    };
    const lane = {
      ...request,
      environment,
      orchestrator: 'deployOdooSh',
      instanceId,
      deliveryId: `api-${context.invocationId}`,
    } as unknown as LaneRequest;
    const how = await routeToLane(client, lane, (m) => context.log(m));
    if (how === 'duplicate')
      return json(409, {
        error: 'DEPLOYMENTS.DUPLICATE',
        message: `${version} (${sha.slice(0, 7)}) was already deployed to ${target.branch}: pass "force": true to move the branch again`,
        id: baseId,
        statusUrl: `/api/deployments/${baseId}`,
      });
    return json(202, {
      id: instanceId,
      target: 'odoosh',
      branch: target.branch,
      stage: target.stage,
      via: `lane ${how}`,
      statusUrl: `/api/deployments/${instanceId}`,
      ...(target.stage === 'production'
        ? { approval: 'requested: signed links go to the approvers in Slack' }
        : {}),
    });
  } catch (err) {
    context.error(`odoo.sh deployment request failed: ${messageOf(err)}`);
    return json(503, {
      error: errorCode(err) ?? 'DEPLOYMENTS.UNAVAILABLE',
      message: messageOf(err).replace(/https?:\/\/\S+/g, '<url>'),
    });
  }
}
