/**
 * Optional second way to decide: Slack interactive buttons (`POST /api/slack/interactions`, the
 * "Interactivity Request URL" of the Slack app). The approval links work without it.
 *
 * Order of checks (octokit-style: raw bytes first, never parse before verifying):
 *   1. SLACK_SIGNING_SECRET set (404 otherwise: the feature is off);
 *   2. `X-Slack-Request-Timestamp` within 5 minutes of now (401) — replayed captures are refused;
 *   3. `X-Slack-Signature` = `v0=` + hex HMAC-SHA256(secret, `v0:{timestamp}:{raw body}`), constant time (401);
 *   4. then the form body `payload=<json>` (400 when unreadable);
 *   5. the token (a button's `value`, or the modal's `private_metadata`) is the same signed approval
 *      token as a link (same checks: signature, expiry, the deploy waiting for that nonce), and the Slack
 *      user (`user.id`) must be the approver the token was issued to (APPROVERS `slack=U…`); anyone
 *      else is refused and the attempt recorded in the audit trail, as the web page does (issue #15).
 *
 * `block_actions` (a click on a button built by `approvalButtons()` in ./slack-buttons):
 *   - Approve / Roll back decide NOTHING: the click opens the approval modal through `views.open`
 *     (bot token, the payload's `trigger_id`): the checklist (every box required, Approve only), the
 *     typed word APPROVE / ROLLBACK, an optional comment; the token rides in `private_metadata`;
 *   - Reject decides on click, after Slack's confirm dialog (as on the page a rejection needs neither
 *     checklist nor word); the outcome goes back as an ephemeral message through `response_url` (only
 *     to Slack's own hosts, or to SLACK_API_URL's origin for a local fake Slack).
 * `view_submission` (the modal submitted): everything above is checked again, then every box and the
 * typed word (else `{"response_action":"errors"}` on the fields), the nonce is claimed once (the same
 * Blob marker as the link flow) and `approval-decision` raised without waiting for the outcome (Slack
 * wants an answer within 3 s); the modal is replaced by the outcome (`response_action: update`).
 */
import { app, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { loadConfig } from '../shared/config';
import { messageOf } from '../shared/domain/errors';
import type { Approver } from '../shared/domain/identity';
import { createSlack } from '../shared/adapters/slack';
import {
  approvalModal,
  MODAL_BLOCKS,
  MODAL_CALLBACK,
  MODAL_MAX_COMMENT,
  modalWord,
  resultModal,
  type ButtonSubject,
} from './slack-buttons';
import {
  approvalsEnv,
  CHECKLIST,
  checkLink,
  logRefusalDetail,
  safely,
  deliverDecision,
  type ApprovalDecision,
  type ApprovalsEnv,
  type LinkState,
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
interface InteractionPayload {
  type?: string;
  user?: SlackUser;
  trigger_id?: string;
  actions?: Array<{ action_id?: string; value?: string }>;
  response_url?: string;
  /** view_submission: the modal as submitted */
  view?: {
    callback_id?: string;
    private_metadata?: string;
    state?: { values?: Record<string, Record<string, ViewValue>> };
  };
}
interface ViewValue {
  type?: string;
  value?: string | null;
  selected_options?: Array<{ value?: string }>;
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
const slackId = (user: SlackUser | undefined) =>
  String(user?.id ?? '?')
    .replace(/[^A-Z0-9]/g, '')
    .slice(0, 30);

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

/** A valid token used by another Slack user: recorded in the audit trail, as the web page does. */
async function recordWrongUser(
  envs: ApprovalsEnv,
  link: LinkState,
  user: SlackUser | undefined,
  req: HttpRequest,
  context: InvocationContext,
  why: string,
): Promise<void> {
  await envs.store
    .recordRefusal({
      instanceId: link.claims.instanceId,
      nonce: link.claims.nonce,
      approver: link.claims.approver,
      attemptedBy: `slack:${slackId(user)}`,
      ...(typeof user?.username === 'string' ? { attemptedByName: user.username.slice(0, 100) } : {}),
      ip: 'slack',
      userAgent: (req.headers.get('user-agent') ?? 'Slack').slice(0, 300),
      at: new Date().toISOString(),
      why,
    })
    .catch((err) =>
      context.error(`could not record a refused Slack attempt: ${messageOf(err).split('\n')[0]}`),
    );
  context.warn(
    `Slack approval of ${link.claims.approver} for ${link.claims.instanceId} attempted by Slack user ${slackId(user)}: refused`,
  );
}

/** What the modal shows about the deploy, from the status the orchestration publishes. */
function subjectOf(link: LinkState): ButtonSubject {
  const w = link.waiting;
  const env = typeof w.environment === 'string' ? w.environment : 'prod';
  const odoosh = env.startsWith('odoosh-')
    ? { stage: typeof w.stage === 'string' ? w.stage : 'production', branch: env.slice('odoosh-'.length) }
    : undefined;
  return {
    version: typeof w.version === 'string' ? w.version : '?',
    environment: env.toUpperCase(),
    odoosh,
    previousVersion: typeof w.previousVersion === 'string' ? w.previousVersion : undefined,
  };
}

const noStore = { 'cache-control': 'no-store' };
/** view_submission answers: field errors keep the modal open; `update` replaces it with the outcome. */
const viewErrors = (errors: Record<string, string>): HttpResponseInit => ({
  status: 200,
  jsonBody: { response_action: 'errors', errors },
  headers: noStore,
});
const viewResult = (title: string, text: string): HttpResponseInit => ({
  status: 200,
  jsonBody: { response_action: 'update', view: resultModal(title, text) },
  headers: noStore,
});

/**
 * `view_submission` of the approval modal: the only way Approve and Roll back decide in Slack.
 * The token comes back in `private_metadata` (Slack returns the view as we opened it, but the body is
 * only as trustworthy as its signature: everything is checked again).
 */
async function viewSubmission(
  payload: InteractionPayload,
  req: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  const view = payload.view;
  const cb = view?.callback_id;
  const action: 'approve' | 'rollback' | undefined =
    cb === MODAL_CALLBACK.approve ? 'approve' : cb === MODAL_CALLBACK.rollback ? 'rollback' : undefined;
  if (!view || !action) return ack(200, 'Ignored: not an approval modal.');
  const token = typeof view.private_metadata === 'string' ? view.private_metadata : '';
  const envs = approvalsEnv();
  if ('ok' in envs) {
    logRefusalDetail(context, envs);
    return viewResult('Nothing was decided', `:warning: ${envs.title}: ${envs.message}`);
  }
  const refused = (r: Refusal) => {
    logRefusalDetail(context, r);
    return viewResult('Nothing was decided', `:no_entry: ${r.title}. ${r.message}`);
  };
  const client = df.getClient(context);
  const link = await checkLink(client, envs, token, Date.now());
  if (!link.ok) return refused(link);
  const approver = envs.approvers.find((a) => a.id === link.claims.approver);
  if (!userMatches(approver, payload.user)) {
    await recordWrongUser(envs, link, payload.user, req, context, 'identity-mismatch');
    return viewResult(
      'Not yours',
      `:no_entry: This decision belongs to ${approver?.name ?? link.claims.approver}; you are <@${slackId(payload.user)}>. Nothing was decided, and the attempt was recorded.`,
    );
  }
  const wanted = link.claims.action === 'approval' ? 'approve' : 'rollback';
  if (action !== wanted) return viewResult('Nothing was decided', `:no_entry: This link cannot ${action}.`);

  const values = view.state?.values ?? {};
  const field = (block: string): ViewValue | undefined => values[block]?.[block];
  const errors: Record<string, string> = {};
  if (action === 'approve') {
    const ticked = new Set((field(MODAL_BLOCKS.checklist)?.selected_options ?? []).map((o) => o?.value));
    const missing = CHECKLIST.filter((c) => !ticked.has(c.name));
    if (missing.length)
      errors[MODAL_BLOCKS.checklist] = `Tick every box: ${missing.map((c) => c.label).join(' ')}`;
  }
  const word = modalWord(action);
  const typed = field(MODAL_BLOCKS.word)?.value;
  if (typeof typed !== 'string' || typed.trim() !== word)
    errors[MODAL_BLOCKS.word] = `Type ${word} (capitals).`;
  const comment = field(MODAL_BLOCKS.comment)?.value;
  if (typeof comment === 'string' && comment.length > MODAL_MAX_COMMENT)
    errors[MODAL_BLOCKS.comment] = `At most ${MODAL_MAX_COMMENT} characters.`;
  if (Object.keys(errors).length) return viewErrors(errors);

  const decision: ApprovalDecision = {
    nonce: link.claims.nonce,
    approver: link.claims.approver,
    decidedBy: `slack:${payload.user!.id}`,
    action,
    comment: [`via Slack modal (user ${payload.user!.id})`, typeof comment === 'string' ? comment.trim() : '']
      .filter(Boolean)
      .join(': '),
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
  return viewResult(
    action === 'approve' ? 'Approval sent' : 'Rollback requested',
    `:white_check_mark: ${action === 'approve' ? 'Approval' : 'Rollback request'} sent for deploy ${link.claims.instanceId}; the deploy checks the approver list and the four-eyes rule and posts the outcome in Slack.`,
  );
}

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

  let payload: InteractionPayload;
  try {
    const p = new URLSearchParams(raw.toString('utf8')).get('payload');
    if (!p) throw new Error('no payload field');
    payload = JSON.parse(p) as InteractionPayload;
    if (!payload || typeof payload !== 'object') throw new Error('not an object');
  } catch (err) {
    return plain(400, `expected a form body with a JSON "payload" field (${messageOf(err)})`);
  }
  const responseUrl = allowedResponseUrl(payload.response_url, config.SLACK_API_URL);
  const answer = async (status: number, text: string) => {
    await tellUser(responseUrl, text, context);
    return ack(status, text);
  };
  if (payload.type === 'view_submission') return viewSubmission(payload, req, context);
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
    await recordWrongUser(envs, link, payload.user, req, context, 'identity-mismatch');
    return answer(
      200,
      `:no_entry: This button is for ${approver?.name ?? link.claims.approver}; you are <@${slackId(payload.user)}>. Nothing was decided, and the attempt was recorded.`,
    );
  }
  const action = m[1] as DecisionAction;
  const allowed: DecisionAction[] = link.claims.action === 'approval' ? ['approve', 'reject'] : ['rollback'];
  if (!allowed.includes(action))
    return answer(200, `:no_entry: This button cannot ${action}. Nothing was decided.`);

  if (action !== 'reject') {
    // Approve / Roll back: the click only opens the modal; its view_submission decides.
    if (!config.SLACK_BOT_TOKEN)
      return answer(
        200,
        ":warning: Approving in Slack needs the app's bot token (SLACK_BOT_TOKEN), which is not set. Use your approval link. Nothing was decided.",
      );
    if (typeof payload.trigger_id !== 'string' || !payload.trigger_id)
      return answer(
        200,
        ':warning: Slack sent no trigger_id, so the approval form cannot open. Nothing was decided.',
      );
    try {
      await createSlack({
        botToken: config.SLACK_BOT_TOKEN,
        apiUrl: config.SLACK_API_URL,
        timeoutMs: 2500,
      }).openView(
        payload.trigger_id,
        approvalModal({ ...subjectOf(link), approver: approver!.name, action, token: act.value }),
      );
    } catch (err) {
      context.warn(`views.open failed: ${messageOf(err)}`);
      return answer(
        200,
        ':warning: The approval form could not be opened; click again or use your approval link. Nothing was decided.',
      );
    }
    return plain(200, '');
  }

  const decision: ApprovalDecision = {
    nonce: link.claims.nonce,
    approver: link.claims.approver,
    decidedBy: `slack:${payload.user!.id}`,
    action,
    comment: `via Slack button (user ${payload.user?.id ?? '?'})`, // Reject only: the confirm dialog was the check
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
  return answer(
    200,
    `:white_check_mark: Rejection sent for deploy ${link.claims.instanceId}; the deploy checks the approver list and the four-eyes rule and posts the outcome here.`,
  );
}

app.http('slackInteractions', {
  route: 'slack/interactions',
  methods: ['POST'],
  authLevel: 'anonymous',
  extraInputs: [df.input.durableClient()],
  handler: safely(slackInteractions),
});
