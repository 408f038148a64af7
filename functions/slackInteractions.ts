/**
 * Optional second way to decide: Slack interactive buttons (`POST /api/slack/interactions`, the
 * "Interactivity Request URL" of the Slack app). The approval links work without it.
 *
 * Order of checks (octokit-style: raw bytes first, never parse before verifying):
 *   1. SLACK_SIGNING_SECRET set (404 otherwise: the feature is off);
 *   2. `X-Slack-Request-Timestamp` within 5 minutes of now (401) — replayed captures are refused;
 *   3. `X-Slack-Signature` = `v0=` + hex HMAC-SHA256(secret, `v0:{timestamp}:{raw body}`), constant time (401);
 *   4. then the form body `payload=<json>` (400 when unreadable), a `block_actions` payload;
 *   5. the button's `value` is the same signed approval token as a link (same checks: signature, expiry,
 *      the deploy waiting for that nonce), and the Slack user who clicked must be the approver the token
 *      names (everyone in the channel sees every button);
 *   6. the nonce is claimed once (the same Blob marker as the link flow) and `approval-decision` raised.
 * The outcome goes back to the clicking user as an ephemeral message through the payload's
 * `response_url` (only to Slack's own hosts, or to SLACK_API_URL's origin for a local fake Slack).
 *
 * Buttons: `action_id` ends in `approve`, `reject` or `rollback`; `approvalButtons()` (./slack-buttons)
 * builds them, and the approval, reminder and rollback messages carry them whenever SLACK_SIGNING_SECRET
 * is set (Approve carries a Slack `confirm` dialog repeating the checklist, because a button cannot hold
 * checkboxes or a typed word — whoever needs those uses the link).
 */
import { app, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { loadConfig } from '../shared/config';
import { messageOf } from '../shared/domain/errors';
import type { Approver } from '../shared/domain/identity';
import {
  approvalsEnv,
  checkLink,
  logRefusalDetail,
  safely,
  deliverDecision,
  type ApprovalDecision,
  type DecisionAction,
  type Refusal,
} from './approvals';

export const SLACK_WINDOW_SECONDS = 5 * 60;
const MAX_BODY = 64 * 1024;

export type SlackSignatureCheck = { ok: true } | { ok: false; why: string };

/** Slack request signing v0 (https://api.slack.com/authentication/verifying-requests-from-slack). */
export function verifySlackSignature(
  secret: string,
  timestamp: string | null,
  signature: string | null,
  rawBody: Buffer | string,
  nowSeconds: number,
): SlackSignatureCheck {
  if (!timestamp || !/^\d{1,12}$/.test(timestamp))
    return { ok: false, why: 'missing or malformed X-Slack-Request-Timestamp' };
  if (Math.abs(nowSeconds - Number(timestamp)) > SLACK_WINDOW_SECONDS)
    return { ok: false, why: 'X-Slack-Request-Timestamp is more than 5 minutes away from now' };
  if (!signature || !/^v0=[0-9a-f]{64}$/.test(signature))
    return { ok: false, why: 'missing or malformed X-Slack-Signature' };
  const expected = createHmac('sha256', secret).update(`v0:${timestamp}:`).update(rawBody).digest();
  const given = Buffer.from(signature.slice(3), 'hex');
  return timingSafeEqual(expected, given)
    ? { ok: true }
    : { ok: false, why: 'X-Slack-Signature does not match' };
}

/** Sign a body the way Slack does (tests and local tools). */
export function slackSignature(secret: string, timestamp: string, rawBody: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:`).update(rawBody).digest('hex')}`;
}

/** The buttons themselves are built in ./slack-buttons (pure, used by the prodRequestLinks activity). */
export { approvalButtons } from './slack-buttons';

interface SlackUser {
  id?: string;
  username?: string;
  name?: string;
}
interface BlockActionsPayload {
  type?: string;
  user?: SlackUser;
  actions?: Array<{ action_id?: string; value?: string }>;
  response_url?: string;
}

const ACTION = /(?:^|[-_:.])(approve|reject|rollback)$/;

/**
 * The clicking Slack user is the approver the token was issued to: matched on the Slack user id
 * configured for that approver (APPROVERS `slack=U…`), never on user or display names, which their
 * owner can change (issue #15).
 */
function userMatches(approver: Approver | undefined, user: SlackUser | undefined): boolean {
  return !!approver?.slack && typeof user?.id === 'string' && user.id === approver.slack;
}

/** Only Slack's own hosts, or the configured Slack API origin (a local fake Slack in tests). */
export function allowedResponseUrl(
  url: string | undefined,
  slackApiUrl: string | undefined,
): string | undefined {
  if (!url) return undefined;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol === 'https:' && (u.hostname === 'hooks.slack.com' || u.hostname.endsWith('.slack.com')))
    return u.toString();
  try {
    if (slackApiUrl && new URL(slackApiUrl).origin === u.origin) return u.toString();
  } catch {
    /* ignore */
  }
  return undefined;
}

async function tellUser(
  responseUrl: string | undefined,
  text: string,
  context: InvocationContext,
): Promise<void> {
  if (!responseUrl) return;
  try {
    const res = await fetch(responseUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ response_type: 'ephemeral', replace_original: false, text }),
      signal: AbortSignal.timeout(2500),
    });
    if (!res.ok) context.warn(`Slack response_url answered ${res.status}`);
  } catch (err) {
    context.warn(`Slack response_url failed: ${messageOf(err)}`);
  }
}

const ack = (status: number, text: string): HttpResponseInit => ({
  status,
  jsonBody: { response_type: 'ephemeral', replace_original: false, text },
  headers: { 'cache-control': 'no-store' },
});
const plain = (status: number, text: string): HttpResponseInit => ({
  status,
  body: text,
  headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
});

export async function slackInteractions(
  req: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    // an anonymous route: a generic answer with a code, the detail in the log
    context.error(`Slack interactivity is not configured: ${messageOf(err)}`);
    return plain(
      503,
      'Approvals are unavailable: the server is not fully configured (CONFIG.INVALID). Nothing was decided.',
    );
  }
  const secret = config.SLACK_SIGNING_SECRET;
  if (!secret) return plain(404, 'Slack interactivity is not enabled (SLACK_SIGNING_SECRET is not set)');
  const raw = Buffer.from(await req.arrayBuffer());
  if (raw.length > MAX_BODY) return plain(413, 'request body too large');
  const sig = verifySlackSignature(
    secret,
    req.headers.get('x-slack-request-timestamp'),
    req.headers.get('x-slack-signature'),
    raw,
    Math.floor(Date.now() / 1000),
  );
  if (!sig.ok) {
    context.warn(`Slack interaction refused: ${sig.why}`);
    return plain(401, sig.why);
  }

  let payload: BlockActionsPayload;
  try {
    const p = new URLSearchParams(raw.toString('utf8')).get('payload');
    if (!p) throw new Error('no payload field');
    payload = JSON.parse(p) as BlockActionsPayload;
    if (!payload || typeof payload !== 'object') throw new Error('not an object');
  } catch (err) {
    return plain(400, `expected a form body with a JSON "payload" field (${messageOf(err)})`);
  }
  const responseUrl = allowedResponseUrl(payload.response_url, config.SLACK_API_URL);
  const answer = async (status: number, text: string) => {
    await tellUser(responseUrl, text, context);
    return ack(status, text);
  };
  if (payload.type !== 'block_actions')
    return ack(200, `Ignored: ${String(payload.type)} interactions are not used by this app.`);
  const act = payload.actions?.[0];
  const m = ACTION.exec(act?.action_id ?? '');
  if (!act || !m || typeof act.value !== 'string') return ack(200, 'Ignored: not an approval button.');

  const envs = approvalsEnv();
  if ('ok' in envs) {
    logRefusalDetail(context, envs);
    return answer(200, `:warning: ${envs.title}: ${envs.message}`);
  }
  const client = df.getClient(context);
  const link = await checkLink(client, envs, act.value, Date.now());
  const refused = (r: Refusal) => {
    logRefusalDetail(context, r);
    return answer(200, `:no_entry: ${r.title}. ${r.message}`);
  };
  if (!link.ok) return refused(link);
  const approver = envs.approvers.find((a) => a.id === link.claims.approver);
  if (!userMatches(approver, payload.user)) {
    return answer(
      200,
      `:no_entry: This button is for ${approver?.name ?? link.claims.approver}; you are <@${String(payload.user?.id ?? '?').replace(/[^A-Z0-9]/g, '')}>. Nothing was decided.`,
    );
  }
  const action = m[1] as DecisionAction;
  const allowed: DecisionAction[] = link.claims.action === 'approval' ? ['approve', 'reject'] : ['rollback'];
  if (!allowed.includes(action))
    return answer(200, `:no_entry: This button cannot ${action}. Nothing was decided.`);

  const decision: ApprovalDecision = {
    nonce: link.claims.nonce,
    approver: link.claims.approver,
    decidedBy: `slack:${payload.user!.id}`,
    action,
    comment: `via Slack button (user ${payload.user?.id ?? '?'})`,
    ip: 'slack',
    userAgent: (req.headers.get('user-agent') ?? 'Slack').slice(0, 300),
    decidedAt: new Date().toISOString(),
  };
  // Slack wants an answer within 3 s: deliver without waiting for the orchestration's outcome.
  const result = await deliverDecision(client, envs, link, decision, { waitForOutcome: false });
  if (!result.ok) return refused(result);
  context.log(
    `approval decision from Slack: ${action} by ${decision.approver} for ${link.claims.instanceId}`,
  );
  const verb = action === 'approve' ? 'Approval' : action === 'reject' ? 'Rejection' : 'Rollback request';
  return answer(
    200,
    `:white_check_mark: ${verb} sent for deploy ${link.claims.instanceId}; the deploy checks the approver list and the four-eyes rule and posts the outcome here.`,
  );
}

app.http('slackInteractions', {
  route: 'slack/interactions',
  methods: ['POST'],
  authLevel: 'anonymous',
  extraInputs: [df.input.durableClient()],
  handler: safely(slackInteractions),
});
