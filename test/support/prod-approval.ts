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
export async function requestProdDeploy(baseUrl: string, functionKey: string, body: ProdRequestBody): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${baseUrl.replace(/\/+$/, '')}/api/deployments`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-functions-key': functionKey },
    body: JSON.stringify({ environment: 'prod', ...body }),
  });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, unknown> };
}

/** The links of one kind that Slack received for one deploy instance (newest message first). */
export function approvalLinks(posts: SlackPost[], instanceId: string, kind: LinkKind = 'approval'): ApprovalLink[] {
  for (const p of [...posts].reverse()) {
    const blocks = (p.body.blocks ?? []) as Array<{ block_id?: string; text?: { text?: string }; elements?: Array<{ text?: string }> }>;
    const mine = JSON.stringify(blocks).includes(`/api/deployments/${encodeURIComponent(instanceId)}|`);
    const section = blocks.find((b) => b.block_id === `prod-${kind}-links`);
    if (!mine || !section?.text?.text) continue;
    const out: ApprovalLink[] = [];
    for (const m of section.text.text.matchAll(/\*([^*]+)\*: <(https?:[^|>]+\/api\/approvals\/([A-Za-z0-9_.-]+))\|/g)) out.push({ approver: m[1], url: m[2], token: m[3] });
    return out;
  }
  return [];
}

/** Wait (polling what Slack received) until the links of a deploy appear. */
export async function waitForLinks(posts: SlackPost[], instanceId: string, kind: LinkKind = 'approval', timeoutMs = 120_000): Promise<ApprovalLink[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const links = approvalLinks(posts, instanceId, kind);
    if (links.length) return links;
    if (Date.now() > deadline) throw new Error(`no ${kind} links for ${instanceId} reached Slack within ${timeoutMs} ms (${posts.length} posts)`);
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
  o: { comment?: string; userAgent?: string } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const ua = o.userAgent ?? 'Mozilla/5.0 (odoo-mta e2e)';
  const page = await fetch(url, { headers: { accept: 'application/json', 'user-agent': ua } });
  const data = (await page.json().catch(() => ({}))) as { ok?: boolean; form?: { csrf_nonce: string; csrf: string; confirmWord: string; checklist: string[] }; message?: string };
  if (page.status !== 200 || !data.form) return { status: page.status, body: data as Record<string, unknown> };
  const form = new URLSearchParams({ csrf_nonce: data.form.csrf_nonce, csrf: data.form.csrf, decision, comment: o.comment ?? '' });
  if (decision !== 'reject') form.set('confirm', data.form.confirmWord);
  if (decision === 'approve') for (const c of data.form.checklist) form.set(c, 'yes');
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', origin: new URL(url).origin, 'sec-fetch-site': 'same-origin', 'user-agent': ua },
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
}): Promise<{ id: string; links: ApprovalLink[] }> {
  const r = await requestProdDeploy(o.baseUrl, o.functionKey, { version: o.version, requestedBy: o.requestedBy, reason: o.reason });
  if (r.status !== 202 || typeof r.body.id !== 'string') throw new Error(`PROD deploy request refused (${r.status}): ${String(r.body.message ?? JSON.stringify(r.body))}`);
  const links = await waitForLinks(o.slackPosts, r.body.id, 'approval', o.timeoutMs ?? 120_000);
  return { id: r.body.id, links };
}
