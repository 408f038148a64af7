/**
 * `POST /api/deployments` with `"target": "odoosh"` (dispatched from functions/deployments.ts):
 *   { "target": "odoosh", "branch": "staging", "version": "1.2.0", "sha"?: "<40 hex>", "force"?: false,
 *     "requestedBy"?: "...", "reason"?: "..." }
 * The commit comes from UAT's ledger (the version that ran there) unless `sha` is given. The deploy runs
 * in the branch's own lane (`lane-odoosh-<branch>`): one move of a branch at a time.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { loadConfig } from '../shared/config';
import { createLedger, ledgerContainer } from '../shared/adapters/ledger';
import { errorCode, messageOf } from '../shared/domain/errors';
import { SHA40, odooShEnvironment, odooShInstanceId, parseOdooShBranches, type OdooShRequest } from '../shared/domain/odoosh';
import { routeToLane } from './deployQueueTrigger';
import type { LaneRequest } from './orchestrators/deployLane';

const VERSION = /^[0-9]+\.[0-9]+\.[0-9]+(?:[-+][0-9A-Za-z.-]+)?$/;
const json = (status: number, body: unknown): HttpResponseInit => ({ status, jsonBody: body, headers: { 'cache-control': 'no-store' } });

export async function requestOdooShDeployment(body: Record<string, unknown>, req: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const problems: string[] = [];
  if (body.target !== 'odoosh') problems.push('target must be "odoosh" (or leave it out and give an environment)');
  if (typeof body.branch !== 'string' || !body.branch) problems.push('branch must name an Odoo.sh branch from ODOOSH_BRANCHES');
  if (typeof body.version !== 'string' || !VERSION.test(body.version)) problems.push('version must be a semantic version like 1.2.3');
  if (body.sha !== undefined && (typeof body.sha !== 'string' || !SHA40.test(body.sha))) problems.push('sha must be a 40-character lowercase hex commit id');
  if (body.force !== undefined && typeof body.force !== 'boolean') problems.push('force must be true or false');
  if (body.reason !== undefined && (typeof body.reason !== 'string' || body.reason.length > 500)) problems.push('reason must be a text of at most 500 characters');
  if (body.requestedBy !== undefined && (typeof body.requestedBy !== 'string' || body.requestedBy.length > 200)) problems.push('requestedBy must be a text of at most 200 characters');
  if (problems.length) return json(400, { error: 'DEPLOYMENTS.BAD_REQUEST', message: problems.join('; '), problems });

  try {
    const config = loadConfig(process.env);
    if (!config.ODOOSH_REPOSITORY) return json(503, { error: 'CONFIG.ODOOSH_MISSING', message: 'the Odoo.sh target is not configured: set ODOOSH_REPOSITORY (and ODOOSH_BRANCHES)' });
    let branches;
    try {
      branches = parseOdooShBranches(config.ODOOSH_BRANCHES ?? []);
    } catch (err) {
      return json(503, { error: 'CONFIG.ODOOSH_BRANCHES', message: messageOf(err) });
    }
    const target = branches.find((b) => b.branch === body.branch);
    if (!target) return json(400, { error: 'DEPLOYMENTS.UNKNOWN_BRANCH', message: `branch ${String(body.branch).slice(0, 100)} is not an Odoo.sh branch this pipeline may move (ODOOSH_BRANCHES: ${branches.map((b) => b.branch).join(', ') || 'none'})` });
    if (target.stage === 'production')
      return json(422, { error: 'ODOOSH.APPROVAL_UNAVAILABLE', message: `${target.branch} is an Odoo.sh production branch: production moves need PROD's approvals, which the Odoo.sh target does not offer yet; move it by hand after approval (docs/ODOO_SH_DEPLOYMENT.md)` });
    const version = body.version as string;
    const known = (await createLedger(ledgerContainer(config)).history('uat', 100)).find((r) => r.version === version);
    const sha = (body.sha as string | undefined) ?? known?.sha;
    if (!sha) return json(422, { error: 'DEPLOYMENTS.UNKNOWN_VERSION', message: `version ${version} never ran on uat: give its "sha" (a commit that passed the gate) to deploy it to Odoo.sh` });
    const requestedBy = req.headers.get('x-ms-client-principal-name') ?? (typeof body.requestedBy === 'string' && body.requestedBy ? body.requestedBy : 'api (function key)');
    const force = body.force === true;
    const environment = odooShEnvironment(target.branch);
    const baseId = odooShInstanceId(target.branch, version, sha);
    const instanceId = force ? `${baseId}-r${Date.now().toString(36)}` : baseId;
    const request: OdooShRequest = {
      type: 'deploy-odoosh',
      branch: target.branch,
      stage: target.stage,
      repository: config.ODOOSH_REPOSITORY,
      version,
      sha,
      force,
      requestedBy,
      ...(typeof body.reason === 'string' && body.reason ? { reason: body.reason } : {}),
      requestedAt: new Date().toISOString(),
      waitMinutes: config.ODOOSH_WAIT_MINUTES ?? 60,
      pollSeconds: 30,
    };
    const lane = { ...request, environment, orchestrator: 'deployOdooSh', instanceId, deliveryId: `api-${context.invocationId}` } as unknown as LaneRequest;
    const how = await routeToLane(df.getClient(context), lane, (m) => context.log(m));
    if (how === 'duplicate') return json(409, { error: 'DEPLOYMENTS.DUPLICATE', message: `${version} (${sha.slice(0, 7)}) was already deployed to ${target.branch}: pass "force": true to move the branch again`, id: baseId, statusUrl: `/api/deployments/${baseId}` });
    return json(202, { id: instanceId, target: 'odoosh', branch: target.branch, stage: target.stage, via: `lane ${how}`, statusUrl: `/api/deployments/${instanceId}` });
  } catch (err) {
    context.error(`odoo.sh deployment request failed: ${messageOf(err)}`);
    return json(503, { error: errorCode(err) ?? 'DEPLOYMENTS.UNAVAILABLE', message: messageOf(err).replace(/https?:\/\/\S+/g, '<url>') });
  }
}
