/**
 * GET /api/dashboard (function key; in Azure also behind App Service authentication / Entra ID) — the
 * same data as GET /api/status as one server-rendered HTML page for people: no external assets, no
 * script at all, a strict Content-Security-Policy (only the page's own <style>, by nonce), re-loaded by
 * `<meta http-equiv="refresh">` every `?refresh=N` seconds (5-3600, default 30), readable on a phone.
 *
 * The page is opened with the key in the URL (`?code=…`, as the Functions host accepts it): the refresh
 * keeps the URL, `Referrer-Policy: no-referrer` keeps the key out of any Referer, and the page has no
 * outbound links or resources that could carry it.
 */
import { app, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { randomBytes } from 'node:crypto';
import { collectStatus, parseBackupCount } from './status';
import {
  formatBytes,
  formatDuration,
  formatRelative,
  type EnvironmentStatus,
  type PendingApprovalView,
  type Section,
  type StatusDocument,
} from '../shared/domain/status-view';

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const esc = (v: unknown): string => String(v ?? '').replace(/[&<>"']/g, (c) => ESC[c]);

const OUTCOME_CLASS: Record<string, string> = { Succeeded: 'ok', Completed: 'ok', verified: 'ok', complete: 'info', Failed: 'bad', RolledBack: 'warn', NeedsAttention: 'bad', Rejected: 'warn', TimedOut: 'warn', Terminated: 'warn', corrupt: 'bad', incomplete: 'warn' };
const badge = (text: string) => `<span class="badge ${OUTCOME_CLASS[text] ?? 'info'}">${esc(text)}</span>`;
const when = (at: string | undefined, now: Date) => (at ? `<time datetime="${esc(at)}" title="${esc(at)}">${esc(formatRelative(at, now))}</time>` : '?');

function part<T>(title: string, s: Section<T>, body: (v: T) => string): string {
  const inner = s.ok ? body(s.value) : `<p class="unavailable" data-part-error>unavailable: [${esc(s.error.code)}] ${esc(s.error.message)}</p>`;
  return `<section><h3>${esc(title)}</h3>${inner}</section>`;
}

/** Pending approvals as a table (one row per link: who may decide, on what, until when). */
function approvalsTable(list: PendingApprovalView[], now: Date): string {
  return list.length
    ? `<table data-approvals><thead><tr><th>deploy</th><th>approver</th><th>for</th><th>expires</th></tr></thead><tbody>${list
        .map(
          (a) =>
            `<tr class="${a.expired ? 'expired' : ''}"><td>${esc(a.version ?? a.deployment)}${a.requestedBy ? `<br><span class="small">by ${esc(a.requestedBy)}</span>` : ''}</td><td>${esc(a.approver)}</td><td>${esc(a.action)}${a.required !== undefined ? `<br><span class="small">${esc(a.received ?? 0)}/${esc(a.required)} received</span>` : ''}</td><td>${a.expired ? badge('expired') : when(a.expiresAt, now)}</td></tr>`,
        )
        .join('')}</tbody></table>`
    : '<p class="muted">none</p>';
}

/**
 * Approvals of targets without a VM card (an Odoo.sh production branch, `odoosh-<branch>`): one card
 * per target, so a pending production move is as visible as a pending PROD deploy.
 */
function otherApprovals(doc: StatusDocument, now: Date): string {
  if (!doc.approvals) return '';
  if (!doc.approvals.ok) return '';
  const shown = new Set(doc.environments.map((e) => e.name));
  const byTarget = new Map<string, PendingApprovalView[]>();
  for (const a of doc.approvals.value) {
    if (shown.has(a.environment)) continue;
    byTarget.set(a.environment, [...(byTarget.get(a.environment) ?? []), a]);
  }
  return [...byTarget]
    .map(([target, list]) => `<article class="env" id="env-${esc(target)}" data-environment="${esc(target)}"><h2>${esc(target.toUpperCase())}</h2><h3>Pending approvals</h3>${approvalsTable(list, now)}</article>`)
    .join('');
}

function envCard(e: EnvironmentStatus, now: Date): string {
  const running = part('Running', e.running, (r) =>
    r
      ? `<p class="version" data-running-version>${esc(r.version)}</p><p>since ${when(r.since, now)} · <code>${esc(r.sha.slice(0, 12))}</code>${r.previousVersion ? ` · previous ${esc(r.previousVersion)}` : ''}</p>`
      : '<p class="muted">nothing recorded yet</p>',
  );
  const progress = part('In progress', e.inProgress, (p) => {
    if (!p) return '<p class="muted">idle</p>';
    const pg = p.progress;
    const bar = pg.index !== undefined && pg.total !== undefined ? `<progress max="${pg.total}" value="${pg.index}" aria-label="step ${pg.index} of ${pg.total}"></progress> <span>step ${pg.index} of ${pg.total}</span>` : '';
    return (
      `<p data-in-progress><strong>${esc(p.kind)}</strong> ${esc(p.version ?? '')} — step <strong data-step>${esc(pg.step)}</strong></p>` +
      (bar ? `<p>${bar}</p>` : '') +
      `<p class="small">${esc(p.id)} · started ${when(p.startedAt, now)}${p.elapsedMs !== undefined ? ` · ${esc(formatDuration(p.elapsedMs))} elapsed` : ''}${p.backupBytes !== undefined ? ` · backup ${esc(formatBytes(p.backupBytes))}` : ''}${p.requestedBy ? ` · by ${esc(p.requestedBy)}` : ''}</p>`
    );
  });
  const queued = e.queued.ok && e.queued.value.length ? `<p class="small">waiting in the lane: ${e.queued.value.map(esc).join(', ')}</p>` : !e.queued.ok ? `<p class="unavailable">lane unavailable: [${esc(e.queued.error.code)}]</p>` : '';
  const last = part('Last deploy', e.lastDeploy, (d) =>
    d
      ? `<p data-last-outcome>${badge(d.outcome)} ${esc(d.version ?? '')} ${when(d.finishedAt, now)}</p>` +
        (d.reason ? `<p class="small reason">${esc(d.failedStep ? `${d.failedStep}: ` : '')}${esc(d.reason)}</p>` : '') +
        `<p class="small">${esc(d.id)}${d.logs?.length ? ` · ${d.logs.length} log(s) saved` : ''}</p>`
      : '<p class="muted">none yet</p>',
  );
  const approvals = part('Pending approvals', e.pendingApprovals, (list) => approvalsTable(list, now));
  const backups = part('Backups', e.backups, (list) =>
    list.length
      ? `<table data-backups><thead><tr><th>taken</th><th>version</th><th>size</th><th>state</th></tr></thead><tbody>${list
          .map((b) => `<tr><td>${when(b.createdAt, now)}</td><td>${esc(b.version)}</td><td>${esc(formatBytes(b.sizeBytes))}</td><td>${badge(b.state)}${b.verifiedAt ? `<br><span class="small">${when(b.verifiedAt, now)}</span>` : ''}</td></tr>`)
          .join('')}</tbody></table>`
      : '<p class="muted">none</p>',
  );
  const refresh = part('Last refresh', e.lastRefresh, (r) =>
    r
      ? `<p>${badge(r.outcome ?? r.runtimeStatus)} ${r.step && !r.outcome ? `step <strong>${esc(r.step)}</strong> ` : ''}${when(r.updatedAt, now)}</p>` +
        (r.reason ? `<p class="small reason">${esc(r.reason)}</p>` : '') +
        (r.counts ? `<p class="small">${Object.entries(r.counts).map(([k, v]) => `${esc(k)} ${esc(v)}`).join(' · ')}</p>` : '')
      : '<p class="muted">none yet</p>',
  );
  const showRefresh = e.name === 'uat' || (e.lastRefresh.ok && e.lastRefresh.value) || !e.lastRefresh.ok;
  return `<article class="env" id="env-${esc(e.name)}" data-environment="${esc(e.name)}"><h2>${esc(e.name.toUpperCase())}</h2>${running}${progress}${queued}${last}${approvals}${backups}${showRefresh ? refresh : ''}</article>`;
}

export function renderDashboard(doc: StatusDocument, o: { refreshSeconds: number; nonce: string }): string {
  const now = new Date(doc.generatedAt);
  const css = `
:root{color-scheme:light dark;--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--info:#0969da;--line:#d0d7de}
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;padding:12px}
header{display:flex;flex-wrap:wrap;gap:.5em 1em;align-items:baseline;margin-bottom:12px}h1{font-size:1.25em;margin:0}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:12px}
.env{border:1px solid var(--line);border-radius:8px;padding:10px 14px}h2{margin:.2em 0 .4em;font-size:1.15em}
h3{font-size:.8em;text-transform:uppercase;letter-spacing:.05em;margin:.9em 0 .2em;opacity:.75}p{margin:.2em 0}
.version{font-size:1.6em;font-weight:600}.small{font-size:.85em;opacity:.85}.muted{opacity:.6}
.reason{overflow-wrap:anywhere}.unavailable{color:var(--bad)}code{font-size:.9em}
.badge{display:inline-block;padding:0 .45em;border-radius:1em;border:1px solid currentColor;font-size:.85em;font-weight:600}
.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}.info{color:var(--info)}
table{width:100%;border-collapse:collapse;font-size:.9em}th,td{text-align:left;padding:3px 4px;border-bottom:1px solid var(--line);vertical-align:top}
tr.expired{opacity:.6}progress{width:60%;vertical-align:middle}
.problems{border:1px solid var(--bad);border-radius:8px;padding:6px 12px;margin-bottom:12px}`;
  const problems = doc.problems.length
    ? `<div class="problems" role="alert"><strong>Some parts could not be read:</strong><ul>${doc.problems.map((p) => `<li>${esc(p.environment)} ${esc(p.part)}: [${esc(p.code)}] ${esc(p.message)}</li>`).join('')}</ul></div>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="refresh" content="${o.refreshSeconds}">
<meta name="referrer" content="no-referrer">
<title>odoo-mta pipeline — status</title>
<style nonce="${esc(o.nonce)}">${css}</style></head>
<body><header><h1>odoo-mta pipeline</h1><span class="small">updated <time datetime="${esc(doc.generatedAt)}">${esc(doc.generatedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC'))}</time> · refreshes every ${o.refreshSeconds}s · ${esc(doc.runtime ?? '')} · pipeline ${esc(doc.appVersion ?? '')}</span></header>
${problems}<main>${doc.environments.map((e) => envCard(e, now)).join('')}${otherApprovals(doc, now)}</main>
</body></html>`;
}

export function contentSecurityPolicy(nonce: string): string {
  return `default-src 'none'; style-src 'nonce-${nonce}'; img-src 'none'; script-src 'none'; connect-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'`;
}

export async function dashboard(req: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const rawRefresh = req.query.get('refresh');
  const refreshSeconds = rawRefresh === null || rawRefresh === '' ? 30 : Number(rawRefresh);
  const backups = parseBackupCount(req.query.get('backups'));
  const problem = !Number.isInteger(refreshSeconds) || refreshSeconds < 5 || refreshSeconds > 3600 ? 'refresh must be an integer number of seconds from 5 to 3600' : typeof backups === 'string' ? backups : undefined;
  const headers = { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'referrer-policy': 'no-referrer', 'x-frame-options': 'DENY', 'x-content-type-options': 'nosniff' };
  if (problem) return { status: 400, body: `<!doctype html><title>Bad request</title><p>${esc(problem)}</p>`, headers: { ...headers, 'content-security-policy': "default-src 'none'" } };
  const doc = await collectStatus(context, { backups: typeof backups === 'number' ? backups : 5 });
  const nonce = randomBytes(16).toString('base64');
  return { status: 200, body: renderDashboard(doc, { refreshSeconds, nonce }), headers: { ...headers, 'content-security-policy': contentSecurityPolicy(nonce) } };
}

app.http('dashboard', { route: 'dashboard', methods: ['GET'], authLevel: 'function', extraInputs: [df.input.durableClient()], handler: dashboard });
