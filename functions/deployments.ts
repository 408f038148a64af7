/**
 * Deployments API (function key):
 *   POST /api/deployments           { "environment": "uat", "version": "x.y.z", "force": bool, "sha"?: "<40 hex>",
 *                                     "overrideGate"?: bool, "reason"?: "why" }
 *                                   { "target": "odoosh", "branch": "staging", "version": "x.y.z", ... } (functions/deployments-odoosh.ts)
 *        redeploy by hand: the commit and image come from the ledger (a version that ran on the environment)
 *        unless `sha` is given. Only what the coverage gate let through: the commit's gate record (the
 *        intake's) must say passed, and a release that never ran must be the version the intake accepted
 *        for that commit (422 DEPLOYMENTS.GATE_NOT_PASSED / DEPLOYMENTS.VERSION_MISMATCH). `overrideGate`
 *        with a `reason` deploys anyway: the caller and reason are recorded on the deployment, in the
 *        ledger and in the intake's decision records, and that run is never eligible for PROD or Odoo.sh.
 *        `force` (unrelated) migrates all modules. Every request goes through the environment's lane (one deploy at a time):
 *        a release that never ran there gets the id deploy-<env>-<version>-<sha12>; a redeploy of one that
 *        did gets a fresh id <that id>-r<n> (n = 1, 2, …) and waits in the lane like a merge.
 *   GET  /api/deployments?environment=uat[&limit=N]   recent deploys, newest first
 *   GET  /api/deployments/{id}      one deploy: runtime status, current step, bytes backed up, elapsed, outcome
 */
import { app, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import type { DurableOrchestrationStatus } from 'durable-functions';
import { loadConfig } from '../shared/config';
import { createLedger, ledgerContainer, type GateOverride } from '../shared/adapters/ledger';
import { createDeliveriesStore } from '../shared/adapters/deliveries';
import { deployInstanceId } from '../shared/domain/coverage-gate';
import { callerLabel } from '../shared/domain/identity';
import { errorCode, messageOf } from '../shared/domain/errors';
import { readInstance, withoutNonces } from '../shared/adapters/durable-status';
import { releaseImageRef, routeToLane } from './deployQueueTrigger';
import { requestOdooShDeployment } from './deployments-odoosh';
import type { DeployRequest } from './activities/intake';
import { requestProdDeployment } from './deployments-prod';

const ENV = /^[a-z0-9][a-z0-9-]{0,30}$/;
const VERSION = /^[0-9]+\.[0-9]+\.[0-9]+(?:[-+][0-9A-Za-z.-]+)?$/;
const SHA = /^[0-9a-f]{40}$/;
const ID = /^deploy-[a-z0-9-]+-[A-Za-z0-9._-]+$/;
/** orchestrations listed and shown as deployments */
const DEPLOY_ORCHESTRATORS = ['deployUat', 'deployProd', 'deployOdooSh'];
const json = (status: number, body: unknown): HttpResponseInit => ({
  status,
  jsonBody: body,
  headers: { 'cache-control': 'no-store' },
});
const bad = (status: number, error: string, message: string) => json(status, { error, message });

function view(s: DurableOrchestrationStatus) {
  const input = (s.input ?? {}) as Partial<DeployRequest> & { force?: boolean; gateOverride?: GateOverride };
  // approval nonces never leave the server except in their own approver's link (issue #15)
  const output = withoutNonces(s.output ?? undefined) as Record<string, unknown> | undefined;
  return {
    id: s.instanceId,
    runtimeStatus: s.runtimeStatus,
    environment: input.environment,
    version: input.version,
    sha: input.sha,
    force: !!input.force,
    ...(input.gateOverride ? { gateOverride: input.gateOverride } : {}),
    createdTime: s.createdTime,
    lastUpdatedTime: s.lastUpdatedTime,
    status: withoutNonces(s.customStatus ?? null),
    outcome: output?.outcome ?? null,
    result: output ?? null,
  };
}

export async function getDeployment(req: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const id = req.params.id ?? '';
  if (!ID.test(id))
    return bad(400, 'DEPLOYMENTS.BAD_ID', 'a deployment id looks like deploy-<env>-<version>-<sha12>');
  try {
    const s = await readInstance(df.getClient(context), id);
    if (!s || !DEPLOY_ORCHESTRATORS.includes(s.name))
      return bad(404, 'DEPLOYMENTS.NOT_FOUND', `no deployment ${id}`);
    return json(200, view(s));
  } catch (err) {
    context.error(`reading deployment ${id} failed: ${messageOf(err)}`);
    return bad(503, errorCode(err) ?? 'DEPLOYMENTS.UNAVAILABLE', 'the orchestration store is unavailable');
  }
}

export async function listDeployments(
  req: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  const env = req.query.get('environment') ?? 'uat';
  const rawLimit = req.query.get('limit');
  const limit = rawLimit === null || rawLimit === '' ? 20 : Number(rawLimit);
  if (!ENV.test(env))
    return bad(400, 'DEPLOYMENTS.BAD_ENVIRONMENT', 'environment must be a lowercase name like uat');
  if (!Number.isInteger(limit) || limit < 1 || limit > 200)
    return bad(400, 'DEPLOYMENTS.BAD_LIMIT', 'limit must be an integer from 1 to 200');
  try {
    const all = await df.getClient(context).getStatusAll();
    const items = all
      .filter((s) => DEPLOY_ORCHESTRATORS.includes(s.name) && s.instanceId.startsWith(`deploy-${env}-`))
      .sort((a, b) => String(b.createdTime).localeCompare(String(a.createdTime)))
      .slice(0, limit)
      .map(view);
    return json(200, { environment: env, count: items.length, items });
  } catch (err) {
    context.error(`listing deployments failed: ${messageOf(err)}`);
    return bad(503, errorCode(err) ?? 'DEPLOYMENTS.UNAVAILABLE', 'the orchestration store is unavailable');
  }
}

/**
 * The authenticated caller of a request, as recorded with what it asked (one rule for every API, see
 * shared/domain/identity.ts): the Entra ID principal App Service authentication put on the request
 * (`entra:<object id>`, shown by its sign-in name; the platform strips these headers from client
 * requests, the embedded host too), or, with a function key, `key:<fingerprint>` of the key presented
 * (the Node worker is not told the key's name; the key itself is never recorded).
 */
export function callerOf(req: HttpRequest): string {
  return callerLabel(req);
}

const REASON_MAX = 500;

export async function requestDeployment(
  req: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  let body: {
    environment?: unknown;
    version?: unknown;
    force?: unknown;
    sha?: unknown;
    overrideGate?: unknown;
    reason?: unknown;
  };
  try {
    const text = await req.text();
    if (text.length > 10_000) return bad(413, 'DEPLOYMENTS.TOO_LARGE', 'the request body is too large');
    body = JSON.parse(text) as typeof body;
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new Error('not an object');
  } catch {
    return bad(
      400,
      'DEPLOYMENTS.BAD_JSON',
      'the body must be a JSON object { "environment": "uat", "version": "x.y.z", "force": false }',
    );
  }
  if (body.environment === 'prod')
    return requestProdDeployment(body as Record<string, unknown>, req, context);
  if ((body as Record<string, unknown>).target !== undefined)
    return requestOdooShDeployment(body as Record<string, unknown>, req, context);
  const problems: string[] = [];
  if (body.environment !== 'uat')
    problems.push('environment must be "uat" (PROD deploys go through approvals)');
  if (typeof body.version !== 'string' || !VERSION.test(body.version))
    problems.push('version must be a semantic version like 1.2.3');
  if (body.force !== undefined && typeof body.force !== 'boolean')
    problems.push('force must be true or false');
  if (body.sha !== undefined && (typeof body.sha !== 'string' || !SHA.test(body.sha)))
    problems.push('sha must be a 40-character lowercase hex commit id');
  if (body.overrideGate !== undefined && typeof body.overrideGate !== 'boolean')
    problems.push('overrideGate must be true or false');
  const reason = typeof body.reason === 'string' ? body.reason.trim() : undefined;
  if (
    body.reason !== undefined &&
    (reason === undefined ||
      reason.length === 0 ||
      reason.length > REASON_MAX ||
      [...reason].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f))
  )
    problems.push(`reason must be text of 1 to ${REASON_MAX} characters on one line`);
  else if (body.overrideGate === true && !reason)
    problems.push('overrideGate needs a reason: say why this release goes to UAT without a passed gate');
  if (problems.length)
    return json(400, { error: 'DEPLOYMENTS.BAD_REQUEST', message: problems.join('; '), problems });
  const environment = body.environment as string;
  const version = body.version as string;
  const override = body.overrideGate === true;
  const caller = callerOf(req);
  try {
    const config = loadConfig(process.env);
    const container = ledgerContainer(config);
    const ledger = createLedger(container);
    const gates = createDeliveriesStore(container);
    // the run of this release on UAT (the same commit when `sha` is given)
    const known = (await ledger.history(environment, 100)).find(
      (r) => r.version === version && (body.sha === undefined || r.sha === body.sha),
    );
    const sha = (body.sha as string | undefined) ?? known?.sha;
    if (!sha || !SHA.test(sha))
      return bad(
        422,
        'DEPLOYMENTS.UNKNOWN_VERSION',
        `version ${version} never ran on ${environment}: give its "sha" to deploy it`,
      );
    const short = sha.slice(0, 7);
    if (!override) {
      // only what the gate let through goes to UAT: the commit's gate record, and the release the intake accepted for it
      const gate = (await gates.commit(sha))?.value;
      const anyway =
        'to deploy it anyway send "overrideGate": true with a "reason" (recorded; such a release is never eligible for PROD or Odoo.sh)';
      if (gate?.state !== 'passed')
        return bad(
          422,
          'DEPLOYMENTS.GATE_NOT_PASSED',
          `commit ${short} ${gate ? `did not pass the coverage gate (${gate.state}${gate.reason ? `: ${gate.reason}` : ''})` : 'was never checked by the coverage gate'}; ${anyway}`,
        );
      if (known?.gateOverride)
        return bad(
          422,
          'DEPLOYMENTS.GATE_NOT_PASSED',
          `${version} ran on UAT past the gate (by ${known.gateOverride.by}): a redeploy needs the override again; ${anyway}`,
        );
      if (!known) {
        const accepted = (await gates.list(500)).find((d) => d.decision === 'accepted' && d.sha === sha);
        if (accepted?.version !== version)
          return bad(
            422,
            'DEPLOYMENTS.VERSION_MISMATCH',
            `the gate accepted commit ${short} as ${accepted?.version ? `version ${accepted.version}` : 'no version the intake still lists'}, not ${version}; ${anyway}`,
          );
      }
    }
    const imageRef = known?.imageRef ?? releaseImageRef(config, version);
    const gateOverride: GateOverride | undefined = override
      ? { by: caller, reason: reason!, at: new Date().toISOString() }
      : undefined;
    const request: DeployRequest & { force: boolean; requestedBy: string; gateOverride?: GateOverride } = {
      type: 'deploy-uat',
      environment,
      repository: config.GITHUB_REPOSITORY ?? '',
      version,
      sha,
      imageRef,
      coverage: typeof known?.coverage === 'number' ? known.coverage : 0,
      mergedBy: caller,
      trigger: 'push',
      deliveryId: `api-${context.invocationId}`,
      requestedAt: new Date().toISOString(),
      force: body.force === true,
      requestedBy: caller,
      ...(gateOverride ? { gateOverride } : {}),
    };
    const client = df.getClient(context);
    const baseId = deployInstanceId(environment, version, sha);
    const overridden = async (id: string) => {
      if (!gateOverride) return;
      context.warn(`deploy ${id}: coverage gate overridden by ${caller}: ${reason}`);
      await gates.record({
        decision: 'gate-overridden',
        reason: `deployed past the coverage gate by ${caller}: ${reason}`,
        sha,
        version,
        instanceId: id,
        deliveryId: request.deliveryId,
        overriddenBy: caller,
      });
    };
    if (!(await readInstance(client, baseId))) {
      const how = await routeToLane(client, request, (m) => context.log(m));
      await overridden(baseId);
      return json(202, { id: baseId, via: `lane ${how}`, statusUrl: `/api/deployments/${baseId}` });
    }
    // a redeploy of a release that already ran: a fresh instance id (<baseId>-r<n>), through the lane too,
    // so one deploy at a time holds for every path (it waits for a running deploy, like a merge does)
    const n = (await client.getStatusAll()).filter((s) => s.instanceId.startsWith(`${baseId}-r`)).length + 1;
    const id = `${baseId}-r${n}`;
    const how = await routeToLane(client, { ...request, instanceId: id }, (m) => context.log(m));
    if (how === 'duplicate')
      return bad(
        409,
        'DEPLOYMENTS.DUPLICATE',
        `redeploy ${id} was already requested: follow /api/deployments/${id}`,
      );
    await overridden(id);
    return json(202, { id, via: `lane ${how}`, statusUrl: `/api/deployments/${id}` });
  } catch (err) {
    context.error(`deployment request failed: ${messageOf(err)}`);
    return bad(
      503,
      errorCode(err) ?? 'DEPLOYMENTS.UNAVAILABLE',
      messageOf(err).replace(/https?:\/\/\S+/g, '<url>'),
    );
  }
}

const client = [df.input.durableClient()];
app.http('deploymentsRequest', {
  route: 'deployments',
  methods: ['POST'],
  authLevel: 'function',
  extraInputs: client,
  handler: requestDeployment,
});
app.http('deploymentsList', {
  route: 'deployments',
  methods: ['GET'],
  authLevel: 'function',
  extraInputs: client,
  handler: listDeployments,
});
app.http('deploymentsGet', {
  route: 'deployments/{id}',
  methods: ['GET'],
  authLevel: 'function',
  extraInputs: client,
  handler: getDeployment,
});
