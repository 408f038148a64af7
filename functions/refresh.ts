/**
 * Refresh API (function key; the authenticated caller is recorded as the requester, by the one rule of
 * `callerLabel`: `entra:<object id> (<sign-in name>)` or `key:<fingerprint>`, never a client-sent header):
 *   POST /api/refresh       { "source": "prod", "target": "uat", "filestore": "copy" | "drop" | "skip",
 *                             "backup": "fresh" | "latest", "reason": "..." }
 *        → 202 { id, statusUrl } — the refresh runs through UAT's deploy lane (never beside a deploy);
 *          400 for bad input (each problem named), 409 while the lane runs something, 413 too large.
 *   GET  /api/refresh/{id}  → the refresh's runtime status, current step, row counts, durations, result.
 */
import { app, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { errorCode, messageOf } from '../shared/domain/errors';
import { callerLabel } from '../shared/domain/identity';
import { readInstance } from '../shared/adapters/durable-status';
import {
  REFRESH_ID,
  REFRESH_ORCHESTRATOR,
  refreshInstanceId,
  validateRefreshBody,
  type RefreshBody,
  type RefreshInput,
} from '../shared/domain/refresh';
import { routeToLane } from './deployQueueTrigger';
import { laneInstanceId, type LaneRequest } from './orchestrators/deployLane';

const MAX_BODY = 10_000;
const json = (status: number, body: unknown): HttpResponseInit => ({
  status,
  jsonBody: body,
  headers: { 'cache-control': 'no-store' },
});
const bad = (status: number, error: string, message: string, extra: Record<string, unknown> = {}) =>
  json(status, { error, message, ...extra });

export async function requestRefresh(
  req: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  let body: unknown;
  try {
    const text = await req.text();
    if (text.length > MAX_BODY)
      return bad(413, 'REFRESH.TOO_LARGE', `the request body is larger than ${MAX_BODY} bytes`);
    body = JSON.parse(text);
  } catch {
    return bad(
      400,
      'REFRESH.BAD_JSON',
      'the body must be JSON: { "source": "prod", "target": "uat", "filestore": "copy", "backup": "latest", "reason": "..." }',
    );
  }
  const problems = validateRefreshBody(body);
  if (problems.length) {
    const targetProd =
      !!body && typeof body === 'object' && (body as Record<string, unknown>).target === 'prod';
    return bad(400, targetProd ? 'REFRESH.TARGET_PROD' : 'REFRESH.BAD_REQUEST', problems.join('; '), {
      problems,
    });
  }
  const b = body as RefreshBody;
  try {
    const client = df.getClient(context);
    // one piece of work per environment: a refresh asked for through the API never waits behind a
    // deploy (it stops UAT and replaces its data: it runs when asked or not at all; a merge would not
    // supersede it in the lane, only a newer refresh would) — the caller tries again when the lane is idle
    // (a live lane that has not yet said what it runs — just started, continuing as new — is busy too)
    const lane = await readInstance(client, laneInstanceId('uat'));
    const laneStatus = lane?.customStatus as { running?: string | null } | null | undefined;
    const live = !!lane && ['Running', 'Pending', 'ContinuedAsNew'].includes(String(lane.runtimeStatus));
    if (live && (!laneStatus || laneStatus.running)) {
      const running = laneStatus?.running ?? 'starting';
      return bad(409, 'REFRESH.BUSY', `UAT is busy (${running}): try again when it ends`, { running });
    }
    const requestedAt = new Date();
    const id = refreshInstanceId(requestedAt, context.invocationId.replace(/-/g, '').slice(-8));
    const requestedBy = callerLabel(req);
    const input: RefreshInput = {
      type: 'refresh',
      environment: 'uat',
      source: b.source,
      target: b.target,
      filestore: b.filestore,
      backup: b.backup,
      reason: b.reason.trim(),
      requestedBy,
      requestedAt: requestedAt.toISOString(),
      orchestrator: REFRESH_ORCHESTRATOR,
      instanceId: id,
      version: 'refresh',
      sha: '',
      deliveryId: `api-${context.invocationId}`,
    };
    const how = await routeToLane(client, input as unknown as LaneRequest, (m) => context.log(m));
    context.log(`refresh ${id} requested by ${requestedBy}: ${how}`);
    return json(202, { id, via: `lane ${how}`, statusUrl: `/api/refresh/${id}` });
  } catch (err) {
    context.error(`refresh request failed: ${messageOf(err)}`);
    return bad(
      503,
      errorCode(err) ?? 'REFRESH.UNAVAILABLE',
      messageOf(err).replace(/https?:\/\/\S+/g, '<url>'),
    );
  }
}

export async function getRefresh(req: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const id = req.params.id ?? '';
  if (!REFRESH_ID.test(id))
    return bad(400, 'REFRESH.BAD_ID', 'a refresh id looks like refresh-uat-20260101t120000z-abcd1234');
  try {
    const client = df.getClient(context);
    const s = await readInstance(client, id);
    if (!s || s.name !== REFRESH_ORCHESTRATOR) {
      const lane = await readInstance(client, laneInstanceId('uat'));
      // still queued in the lane (`waiting`: the ids in arrival order; a single id from older lanes)
      const waiting = (lane?.customStatus as { waiting?: string | string[] | null } | undefined)?.waiting;
      if (Array.isArray(waiting) ? waiting.includes(id) : waiting === id)
        return json(200, { id, runtimeStatus: 'Waiting', status: null, outcome: null, result: null });
      return bad(404, 'REFRESH.NOT_FOUND', `no refresh ${id}`);
    }
    const input = (s.input ?? {}) as Partial<RefreshInput>;
    const output = (s.output ?? undefined) as Record<string, unknown> | undefined;
    return json(200, {
      id,
      runtimeStatus: s.runtimeStatus,
      source: input.source,
      target: input.target,
      filestore: input.filestore ?? null,
      backup: input.backup ?? null,
      reason: input.reason,
      requestedBy: input.requestedBy,
      createdTime: s.createdTime,
      lastUpdatedTime: s.lastUpdatedTime,
      status: s.customStatus ?? null,
      outcome: output?.outcome ?? null,
      result: output ?? null,
    });
  } catch (err) {
    context.error(`reading refresh ${id} failed: ${messageOf(err)}`);
    return bad(503, errorCode(err) ?? 'REFRESH.UNAVAILABLE', 'the orchestration store is unavailable');
  }
}

const client = [df.input.durableClient()];
app.http('refreshRequest', {
  route: 'refresh',
  methods: ['POST'],
  authLevel: 'function',
  extraInputs: client,
  handler: requestRefresh,
});
app.http('refreshGet', {
  route: 'refresh/{id}',
  methods: ['GET'],
  authLevel: 'function',
  extraInputs: client,
  handler: getRefresh,
});
