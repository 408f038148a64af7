/**
 * Driving a PROD deploy from the outside, as a person would: request it over HTTP, read the approval
 * (or rollback) links from what Slack received, open a link and decide on its page. Used by the sandbox
 * e2e test and by `npm run demo` (`requestProdDeployAndLinks`).
 *
 * Deciding goes through the real approval door (functions/approvals.ts): GET the link with
 * `Accept: application/json` (the page's data: CSRF pair, confirmation word, checklist), then POST the
 * same form the HTML page posts (form-urlencoded, same origin).
 */
import type { SlackPost } from './fake-slack';

export interface ProdRequestBody {
  environment?: 'prod';
  version: string;
  requestedBy: string;
  reason: string;
}

export interface ApprovalLink {
  approver: string;
  url: string;
  token: string;
}

export type LinkKind = 'approval' | 'reminder' | 'rollback';

/** `POST /api/deployments` for PROD: `{ status, body }` (202 body: `{ id, via, statusUrl, ... }`). */
export async function requestProdDeploy(
  baseUrl: string,
  functionKey: string,
  body: ProdRequestBody,
  cookie?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${baseUrl.replace(/\/+$/, '')}/api/deployments`, {
    method: 'POST',
    // the requester is who is signed in (cookie: the embedded host's local sign-in), else the key
    headers: {
      'content-type': 'application/json',
      'x-functions-key': functionKey,
      ...(cookie ? { cookie } : {}),
    },
    body: JSON.stringify({ environment: 'prod', ...body }),
  });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, unknown> };
}

/** The approver id a token was issued to (its `a` claim; the payload is readable, only its signature is secret-keyed). */
export function tokenApprover(token: string): string {
  try {
    return String(
      (JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString('utf8')) as { a?: unknown }).a ?? '',
    );
  } catch {
    return '';
  }
}

const USER_ID = /^[UW][A-Z0-9]{2,20}$/;

/**
 * The links of one kind that the approvers received privately for one deploy instance: each approver's
 * newest message to their Slack user id carrying a `prod-<kind>-links` section (one link, their own).
 * `approver` is the id the token was issued to, `user` the Slack user it was sent to.
 */
export function approvalLinks(
  posts: SlackPost[],
  instanceId: string,
  kind: LinkKind = 'approval',
): Array<ApprovalLink & { user: string }> {
  const seen = new Map<string, ApprovalLink & { user: string }>();
  for (const p of [...posts].reverse()) {
    if (p.via !== 'api' || !USER_ID.test(p.channel ?? '')) continue;
    const blocks = (p.body.blocks ?? []) as Array<{ block_id?: string; text?: { text?: string } }>;
    if (!JSON.stringify(blocks).includes(`/api/deployments/${encodeURIComponent(instanceId)}|`)) continue;
    const section = blocks.find((b) => b.block_id === `prod-${kind}-links`);
    for (const m of (section?.text?.text ?? '').matchAll(
      /\*([^*]+)\*: <(https?:[^|>]+\/api\/approvals\/([A-Za-z0-9_.-]+))\|/g,
    )) {
      const approver = tokenApprover(m[3]);
      if (!seen.has(approver)) seen.set(approver, { approver, url: m[2], token: m[3], user: p.channel! });
    }
  }
  return [...seen.values()].reverse();
}

/** Wait (polling what Slack received) until the links of a deploy appear. */
export async function waitForLinks(
  posts: SlackPost[],
  instanceId: string,
  kind: LinkKind = 'approval',
  timeoutMs = 120_000,
): Promise<Array<ApprovalLink & { user: string }>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // the channel's request message is posted after every private one: then all links are there
    const requested = posts.some(
      (p) =>
        !USER_ID.test(p.channel ?? '') &&
        JSON.stringify(p.body).includes(`"prod-${kind}-request"`) &&
        JSON.stringify(p.body).includes(`/api/deployments/${encodeURIComponent(instanceId)}|`),
    );
    const links = approvalLinks(posts, instanceId, kind);
    if (requested && links.length) return links;
    if (Date.now() > deadline)
      throw new Error(
        `no ${kind} links for ${instanceId} reached Slack within ${timeoutMs} ms (${posts.length} posts)`,
      );
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Decide on a link's page: tick the checklist, type the confirmation word, press the button.
 * Returns the POST's status and body (JSON).
 */
export async function decideByLink(
  url: string,
  decision: 'approve' | 'reject' | 'rollback',
  o: {
    comment?: string;
    userAgent?: string;
    /** the approver's sign-in (the page decides only for them): a Cookie header */ cookie?: string;
  } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const ua = o.userAgent ?? 'Mozilla/5.0 (odoo-mta e2e)';
  const who: Record<string, string> = o.cookie ? { cookie: o.cookie } : {};
  const page = await fetch(url, { headers: { accept: 'application/json', 'user-agent': ua, ...who } });
  const data = (await page.json().catch(() => ({}))) as {
    ok?: boolean;
    form?: {
      csrf_nonce: string;
      csrf: string;
      confirmWord: string;
      checklist: string[];
      rejectConfirmField: string;
    };
    message?: string;
  };
  if (page.status !== 200 || !data.form)
    return { status: page.status, body: data as Record<string, unknown> };
  const form = new URLSearchParams({
    csrf_nonce: data.form.csrf_nonce,
    csrf: data.form.csrf,
    decision,
    comment: o.comment ?? '',
  });
  if (decision !== 'reject') form.set('confirm', data.form.confirmWord);
  else form.set('reject_confirmed', 'yes'); // the page's second step: "Yes, reject"

  if (decision === 'approve') for (const c of data.form.checklist) form.set(c, 'yes');
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
      origin: new URL(url).origin,
      'sec-fetch-site': 'same-origin',
      'user-agent': ua,
      ...who,
    },
    body: form.toString(),
  });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, unknown> };
}

/**
 * For `npm run demo`: request a PROD deploy of `version` and return its id and the approval links that
 * Slack (the demo's fake Slack) received — one per approver except the requester when FOUR_EYES is on.
 */
export async function requestProdDeployAndLinks(o: {
  baseUrl: string;
  functionKey: string;
  slackPosts: SlackPost[];
  version: string;
  requestedBy: string;
  reason: string;
  timeoutMs?: number;
  /** the requester's sign-in (Cookie header); without it the request is the function key's */
  cookie?: string;
}): Promise<{ id: string; links: ApprovalLink[] }> {
  const r = await requestProdDeploy(
    o.baseUrl,
    o.functionKey,
    {
      version: o.version,
      requestedBy: o.requestedBy,
      reason: o.reason,
    },
    o.cookie,
  );
  if (r.status !== 202 || typeof r.body.id !== 'string')
    throw new Error(
      `PROD deploy request refused (${r.status}): ${String(r.body.message ?? JSON.stringify(r.body))}`,
    );
  const links = await waitForLinks(o.slackPosts, r.body.id, 'approval', o.timeoutMs ?? 120_000);
  return { id: r.body.id, links };
}
