/**
 * `POST /api/deployments` with `{ "environment": "prod", "version": "x.y.z", "reason": "...", "requestedBy"?: "..." }`
 * (dispatched here by functions/deployments.ts; no registration of its own).
 *
 *  400  bad input (each problem named)
 *  422  the version never succeeded on UAT, or its `uat-vX.Y.Z` image is not in the registry (or changed)
 *  409  a PROD deploy of this version is already waiting or running (DEPLOYMENTS.BUSY); or PROD already
 *       runs this version (DEPLOYMENTS.SAME_VERSION) — a re-deploy of it needs `"sameVersion": true`,
 *       and is then accepted with a warning in the answer (`warnings`) and in the request the approvers see
 *  202  `{ id, via, statusUrl }`: the `deployProd` orchestration goes through the PROD lane
 *
 * The requester is the authenticated caller, never a body field (issue #15): the Entra ID principal
 * App Service Authentication put on the request (`entra:<object id>`), else the function key presented
 * (`key:<fingerprint>`, see shared/domain/identity.ts). Four-eyes compares that id with the approvers'
 * identities. A `requestedBy` in the body is only a label shown next to a key caller ("key:3fa2… for
 * alice"): it proves nothing and counts for nothing.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { loadConfig } from '../shared/config';
import { createLedger, eligibleUatRuns, ledgerContainer } from '../shared/adapters/ledger';
import { createDeliveriesStore } from '../shared/adapters/deliveries';
import { createRegistryClient } from '../shared/adapters/registry';
import { deployInstanceId } from '../shared/domain/coverage-gate';
import { repositoryOf, tagOf } from '../shared/domain/deploy-plan';
import { errorCode, messageOf } from '../shared/domain/errors';
import { requestCaller, type Caller } from '../shared/domain/identity';
import { LIVE } from '../shared/adapters/durable-status';
import { routeToLane } from './deployQueueTrigger';
import type { LaneRequest } from './orchestrators/deployLane';
import { DEPLOY_PROD, type ProdDeployInput } from './orchestrators/deployProd';

const VERSION = /^[0-9]+\.[0-9]+\.[0-9]+(?:[-+][0-9A-Za-z.-]+)?$/;
const PERSON = /^[A-Za-z0-9][A-Za-z0-9._@+ -]{0,99}$/;
const json = (status: number, body: unknown): HttpResponseInit => ({
  status,
  jsonBody: body,
  headers: { 'cache-control': 'no-store' },
});
const bad = (status: number, error: string, message: string) => json(status, { error, message });

/** The PROD request as the lane runs it (`deployProd` as the lane's sub-orchestration). */
export type ProdLaneRequest = ProdDeployInput & {
  type: 'deploy-prod';
  orchestrator: typeof DEPLOY_PROD;
  instanceId: string;
  repository: string;
  deliveryId: string;
  requestedAt: string;
};

/** How a requester is shown: the sign-in name; a key's id with the label its caller gave ("key:3fa2… for alice"). */
export function requesterLabel(caller: Caller, claimed: string | undefined): string {
  const label = typeof claimed === 'string' ? claimed.trim() : '';
  return caller.kind === 'key' && label && label !== caller.name
    ? `${caller.name} for ${label}`
    : caller.name;
}

export async function requestProdDeployment(
  body: Record<string, unknown>,
  req: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  const problems: string[] = [];
  const caller = requestCaller(req);
  const version = body.version;
  const requestedBy = body.requestedBy;
  const reason = typeof body.reason === 'string' ? body.reason.trim() : body.reason;
  if (typeof version !== 'string' || !VERSION.test(version))
    problems.push('version must be a semantic version like 1.2.3');
  if (requestedBy !== undefined && (typeof requestedBy !== 'string' || !PERSON.test(requestedBy.trim())))
    problems.push(
      'requestedBy, when given, is a label of up to 100 characters (letters, digits, . _ @ + - and spaces); the requester is who is signed in or which key is used',
    );
  if (typeof reason !== 'string' || reason.length === 0 || reason.length > 500)
    problems.push('reason must say why, in 1 to 500 characters');
  if (body.sameVersion !== undefined && typeof body.sameVersion !== 'boolean')
    problems.push('sameVersion must be true or false');
  for (const k of Object.keys(body))
    if (!['environment', 'version', 'requestedBy', 'reason', 'sameVersion'].includes(k))
      problems.push(
        `unknown field "${k}" (PROD deploys take environment, version, requestedBy, reason, sameVersion)`,
      );
  if (problems.length)
    return json(400, { error: 'DEPLOYMENTS.BAD_REQUEST', message: problems.join('; '), problems });
  const who = requesterLabel(caller, requestedBy as string | undefined);

  try {
    const config = loadConfig(process.env);
    const ledger = createLedger(ledgerContainer(config));
    // only runs that passed the gate count (a run deployed past it, or of a commit the gate blocked, never does)
    const uatRuns = await eligibleUatRuns(ledger, createDeliveriesStore(ledgerContainer(config)));
    const known = uatRuns.find((r) => r.version === version);
    if (!known) {
      const seen = [...new Set(uatRuns.map((r) => r.version))].slice(0, 5);
      return bad(
        422,
        'DEPLOYMENTS.NOT_ON_UAT',
        `version ${version} has not succeeded on UAT, so it cannot go to PROD${seen.length ? ` (UAT recently ran ${seen.join(', ')})` : ' (UAT has no successful deploy yet)'}`,
      );
    }
    if (!config.REGISTRY_URL)
      return bad(503, 'CONFIG.REGISTRY_MISSING', 'REGISTRY_URL is not set: the image cannot be checked');
    let host = '';
    try {
      host = new URL(config.REGISTRY_URL).host + '/';
    } catch {
      host = '';
    }
    const uatTag = `uat-v${version}`;
    const imageRef =
      known.imageRef && tagOf(known.imageRef) === uatTag
        ? known.imageRef
        : `${host}${config.REGISTRY_REPOSITORY ?? 'odoo-mta'}:${uatTag}`;
    const registry = createRegistryClient({
      kind: config.REGISTRY_KIND ?? 'oci',
      url: config.REGISTRY_URL,
      username: config.REGISTRY_USERNAME,
      password: config.REGISTRY_PASSWORD,
    });
    const image = await registry.resolve(repositoryOf(imageRef), uatTag);
    if (!image)
      return bad(
        422,
        'DEPLOYMENTS.IMAGE_MISSING',
        `the image ${repositoryOf(imageRef)}:${uatTag} that UAT ran is no longer in the registry`,
      );
    if (known.imageDigest && image.digest !== known.imageDigest) {
      return bad(
        422,
        'DEPLOYMENTS.IMAGE_CHANGED',
        `${repositoryOf(imageRef)}:${uatTag} now points at ${image.digest}, not the ${known.imageDigest} that UAT ran: redeploy it to UAT first`,
      );
    }

    // a re-deploy of what PROD runs now changes nothing but costs a backup, a stop and a migration:
    // refused unless asked for explicitly (e.g. to recover a PROD left stopped), and then said loudly
    const running = await ledger.current('prod');
    const warnings: string[] = [];
    if (running && running.version === version) {
      if (body.sameVersion !== true)
        return json(409, {
          error: 'DEPLOYMENTS.SAME_VERSION',
          message: `PROD already runs ${version} (since ${running.deployedAt}): a re-deploy stops PROD and migrates again for no change. To re-deploy it anyway (e.g. to recover PROD), send "sameVersion": true (CLI: --same-version)`,
          running: { version: running.version, sha: running.sha, since: running.deployedAt },
        });
      warnings.push(
        `PROD already runs ${version}: this re-deploys the same version (PROD is stopped and migrated again)`,
      );
    }
    const client = df.getClient(context);
    const baseId = deployInstanceId('prod', version as string, known.sha);
    const earlier = (await client.getStatusAll()).filter(
      (s) => s.name === DEPLOY_PROD && (s.instanceId === baseId || s.instanceId.startsWith(`${baseId}-r`)),
    );
    const live = earlier.find((s) => LIVE.has(String(s.runtimeStatus)));
    if (live)
      return bad(
        409,
        'DEPLOYMENTS.BUSY',
        `a PROD deploy of ${version} is already ${String(live.runtimeStatus).toLowerCase()}: ${live.instanceId}`,
      );
    const id = earlier.length === 0 ? baseId : `${baseId}-r${earlier.length + 1}`;
    const request: ProdLaneRequest = {
      type: 'deploy-prod',
      orchestrator: DEPLOY_PROD,
      instanceId: id,
      environment: 'prod',
      repository: config.GITHUB_REPOSITORY ?? '',
      version: version as string,
      sha: known.sha,
      imageRef,
      requestedBy: caller.id,
      requestedByName: who,
      requesterEmails: caller.emails ?? [],
      reason: reason as string,
      ...(warnings.length ? { sameVersion: true } : {}),
      deliveryId: `api-${context.invocationId}`,
      requestedAt: new Date().toISOString(),
    };
    // the lane runs any orchestrator named in the request with the whole request as its input
    const how = await routeToLane(client, request as unknown as LaneRequest, (m) => context.log(m));
    context.log(`PROD deploy of ${version} requested by ${who}: ${id} (lane ${how})`);
    return json(202, {
      id,
      via: `lane ${how}`,
      statusUrl: `/api/deployments/${id}`,
      version,
      sha: known.sha,
      imageDigest: image.digest,
      ...(warnings.length ? { warnings } : {}),
    });
  } catch (err) {
    context.error(`PROD deployment request failed: ${messageOf(err)}`);
    return bad(
      503,
      errorCode(err) ?? 'DEPLOYMENTS.UNAVAILABLE',
      messageOf(err).replace(/https?:\/\/\S+/g, '<url>'),
    );
  }
}
