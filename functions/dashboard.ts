/**
 * GET /api/dashboard (anonymous route that checks the READ-ONLY key STATUS_READ_KEY itself; in Azure
 * also behind App Service authentication / Entra ID when that is on) — the same data as GET
 * /api/status as one server-rendered HTML page for people: no external assets, no script at all, a
 * strict Content-Security-Policy (only the page's own <style>, by nonce), re-loaded by
 * re-loaded by `<meta http-equiv="refresh">` every `?refresh=N` seconds (5-3600) when the reader asks for
 * it (no timed reload by default: WCAG 2.2.1, a page must not reload under a reader who did not choose
 * it), readable on a phone.
 * `?format=json` gives the status JSON to holders of the read-only key.
 *
 * Why a key of its own: a function key opens every function-level route (it can request deploys), so
 * the page people bookmark carries a key that can only read. The page is opened as `?key=…`: the
 * refresh keeps the URL, `Referrer-Policy: no-referrer` keeps the key out of any Referer, and the page
 * has no outbound links or resources that could carry it. Without the key: a page saying what to do
 * (401), not the host's raw 401 JSON.
 *
 * On top: an attention strip (what is down, what waits for whom and until when, what failed, and the
 * next action), then the environments, a DOWN one first; times absolute in DISPLAY_TIME_ZONE plus
 * relative; long failure texts and the refresh counts folded in <details>.
 */
import { app, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { loadConfig } from '../shared/config';
import { collectStatus, parseBackupCount } from './status';
import {
  formatAbsolute,
  formatBytes,
  formatDuration,
  formatRelative,
  kindText,
  needsText,
  stepText,
  type AttentionItem,
  type EnvironmentStatus,
  type PendingApprovalView,
  type Section,
  type StatusDocument,
} from '../shared/domain/status-view';

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const esc = (v: unknown): string => String(v ?? '').replace(/[&<>"']/g, (c) => ESC[c]);

const OUTCOME_CLASS: Record<string, string> = {
  Succeeded: 'ok',
  Completed: 'ok',
  verified: 'ok',
  complete: 'info',
  Failed: 'bad',
  RolledBack: 'warn',
  NeedsAttention: 'bad',
  LeakFound: 'bad',
  Rejected: 'warn',
  Expired: 'warn',
  TimedOut: 'warn',
  Terminated: 'warn',
  corrupt: 'bad',
  incomplete: 'warn',
  expired: 'warn',
};
const badge = (key: string, text = key) =>
  `<span class="badge ${OUTCOME_CLASS[key] ?? 'info'}">${esc(text)}</span>`;

/** Times as people read them: absolute in the display time zone, then relative; ISO in `datetime`. */
interface View {
  now: Date;
  tz: string;
}
const when = (at: string | undefined, v: View) =>
  at
    ? `<time datetime="${esc(at)}">${esc(formatAbsolute(at, v.tz))}</time> <span class="rel">(${esc(formatRelative(at, v.now))})</span>`
    : '?';

function part<T>(title: string, s: Section<T>, body: (v: T) => string): string {
  const inner = s.ok
    ? body(s.value)
    : `<p class="unavailable" data-part-error>unavailable: [${esc(s.error.code)}] ${esc(s.error.message)}</p>`;
  return `<section><h3>${esc(title)}</h3>${inner}</section>`;
}

/** A long text folded: the one-line summary shown, the whole text behind <details>. */
const folded = (summary: string, detail: string | undefined, label = 'full text') =>
  `<p class="reason" data-failure>${esc(summary)}</p>${detail ? `<details><summary>${esc(label)}</summary><pre class="raw">${esc(detail)}</pre></details>` : ''}`;

/** Pending approvals as a table: who may decide, on what, until when ("needs 1 of alice, bob"). */
function approvalsTable(list: PendingApprovalView[], v: View): string {
  if (!list.length) return '<p class="muted">none</p>';
  const groups = new Map<string, PendingApprovalView[]>();
  for (const a of list)
    groups.set(`${a.deployment}\u0000${a.action}`, [
      ...(groups.get(`${a.deployment}\u0000${a.action}`) ?? []),
      a,
    ]);
  return `<table data-approvals><thead><tr><th>deploy</th><th>waits for</th><th>until</th></tr></thead><tbody>${[
    ...groups.values(),
  ]
    .map((g) => {
      const a = g[0];
      const open = g.filter((x) => !x.expired);
      const people = [...new Set((open.length ? open : g).map((x) => x.approver))];
      const needed = Math.max(1, (a.required ?? 1) - (a.received ?? 0));
      const until = (open.length ? open : g).map((x) => x.expiresAt).sort()[0];
      return `<tr class="${open.length ? '' : 'expired'}"><td>${esc(a.version ?? a.deployment)}${a.requestedBy ? `<br><span class="small">requested by ${esc(a.requestedBy)}</span>` : ''}</td><td>${esc(a.action === 'rollback' ? 'rollback decision' : 'approval')}: ${esc(needsText({ people, needed }))}</td><td>${open.length ? when(until, v) : badge('expired')}</td></tr>`;
    })
    .join('')}</tbody></table>`;
}

/**
 * Approvals of targets without a VM card (an Odoo.sh production branch, `odoosh-<branch>`): one card
 * per target, so a pending production move is as visible as a pending PROD deploy.
 */
function otherApprovals(doc: StatusDocument, v: View): string {
  if (!doc.approvals) return '';
  if (!doc.approvals.ok) return '';
  const shown = new Set(doc.environments.map((e) => e.name));
  const byTarget = new Map<string, PendingApprovalView[]>();
  for (const a of doc.approvals.value) {
    if (shown.has(a.environment)) continue;
    byTarget.set(a.environment, [...(byTarget.get(a.environment) ?? []), a]);
  }
  return [...byTarget]
    .map(
      ([target, list]) =>
        `<article class="env" id="env-${esc(target)}" data-environment="${esc(target)}"><h2>${esc(target.toUpperCase())}</h2><h3>Pending approvals</h3>${approvalsTable(list, v)}</article>`,
    )
    .join('');
}

/** The attention strip: what is down, what waits for whom and until when, what failed — and what to do. */
export function attentionStrip(items: AttentionItem[], v: View): string {
  if (!items.length)
    return '<section class="attention clear" data-attention aria-label="Needs attention"><p data-attention-none>Nothing is down or waiting for anyone.</p></section>';
  const label: Record<AttentionItem['severity'], string> = {
    down: 'DOWN',
    failed: 'FAILED',
    waiting: 'WAITING',
    info: 'NOTE',
  };
  return `<section class="attention" data-attention aria-label="Needs attention"><h2>Needs attention</h2><ul>${items
    .map(
      (i) =>
        `<li class="att ${i.severity}" data-severity="${i.severity}"><span class="tag ${i.severity}">${label[i.severity]}</span> <strong data-title>${esc(i.title)}</strong><br><span data-detail>${esc(i.detail)}</span>${i.until ? `<br><span class="small">until ${when(i.until, v)}</span>` : ''}<br><span class="small next">Next: ${esc(i.next.text)}${i.next.command ? ` <code>${esc(i.next.command)}</code>` : ''}</span></li>`,
    )
    .join('')}</ul></section>`;
}

function envCard(e: EnvironmentStatus, v: View): string {
  const h = e.health.ok ? e.health.value : undefined;
  const down = h?.state === 'down';
  const health = e.health.ok
    ? `<p class="health ${esc(h!.state)}" data-health="${esc(h!.state)}"><span class="tag ${down ? 'down' : h!.state === 'up' ? 'up' : 'unknown'}">${down ? 'DOWN' : h!.state === 'up' ? 'UP' : 'UNKNOWN'}</span> <span data-health-headline>${esc(h!.headline)}</span></p>`
    : `<p class="unavailable" data-part-error>health unavailable: [${esc(e.health.error.code)}] ${esc(e.health.error.message)}</p>`;
  const running = part(down ? 'Last release (not serving)' : 'Running', e.running, (r) =>
    r
      ? `<p class="version${down ? ' stopped' : ''}" ${down ? 'data-stopped-version' : 'data-running-version'}>${esc(r.version)}</p><p>${down ? 'released' : 'since'} ${when(r.since, v)} · <code>${esc(r.sha.slice(0, 12))}</code>${r.previousVersion ? ` · previous ${esc(r.previousVersion)}` : ''}</p>`
      : '<p class="muted">nothing recorded yet</p>',
  );
  const progress = part('In progress', e.inProgress, (p) => {
    if (!p) return '<p class="muted">idle</p>';
    const pg = p.progress;
    const bar =
      !pg.waitingForPerson && pg.index !== undefined && pg.total !== undefined
        ? `<progress max="${pg.total}" value="${pg.index}" aria-label="step ${pg.index} of ${pg.total}"></progress> <span>step ${pg.index} of ${pg.total}</span>`
        : '';
    return (
      `<p data-in-progress><strong>${esc(kindText(p.kind, e.name))}</strong> ${esc(p.version ?? '')} — <strong data-step>${esc(pg.text ?? stepText(pg.step))}</strong></p>` +
      (bar ? `<p>${bar}</p>` : '') +
      `<p class="small">${esc(p.id)} · started ${when(p.startedAt, v)}${p.elapsedMs !== undefined ? ` · ${esc(formatDuration(p.elapsedMs))} so far` : ''}${p.backupBytes !== undefined ? ` · backup ${esc(formatBytes(p.backupBytes))}` : ''}${p.requestedBy ? ` · by ${esc(p.requestedBy)}` : ''}</p>`
    );
  });
  const queued =
    e.queued.ok && e.queued.value.length
      ? `<p class="small">waiting their turn: ${e.queued.value.map(esc).join(', ')}</p>`
      : !e.queued.ok
        ? `<p class="unavailable">queue unavailable: [${esc(e.queued.error.code)}]</p>`
        : '';
  const last = part('Last deploy', e.lastDeploy, (d) =>
    d
      ? `<p data-last-outcome>${badge(d.outcome, d.outcomeText)} ${esc(d.version ?? '')} ${when(d.finishedAt, v)}</p>` +
        (d.failure
          ? folded(`${d.failedStepText ? `while ${d.failedStepText}: ` : ''}${d.failure}`, d.failureDetail)
          : '') +
        (d.requestReason
          ? `<p class="small">asked for: ${esc(d.requestReason)}${d.requestedBy ? ` (${esc(d.requestedBy)})` : ''}</p>`
          : '') +
        `<p class="small">${esc(d.id)}${d.logs?.length ? ` · ${d.logs.length} log file(s) saved: <code>odoo-pipeline logs ${esc(d.id)}</code>` : ''}</p>`
      : '<p class="muted">none yet</p>',
  );
  const approvals = part('Pending approvals', e.pendingApprovals, (list) => approvalsTable(list, v));
  const backups = part('Backups', e.backups, (list) =>
    list.length
      ? `<table data-backups><thead><tr><th>taken</th><th>version</th><th>size</th><th>state</th></tr></thead><tbody>${list
          .map(
            (b) =>
              `<tr><td>${when(b.createdAt, v)}</td><td>${esc(b.version)}</td><td>${esc(formatBytes(b.sizeBytes))}</td><td>${badge(b.state)}${b.verifiedAt ? `<br><span class="small">${when(b.verifiedAt, v)}</span>` : ''}</td></tr>`,
          )
          .join('')}</tbody></table>`
      : '<p class="muted">none</p>',
  );
  const refresh = part('Last refresh', e.lastRefresh, (r) => {
    if (!r) return '<p class="muted">none yet</p>';
    const counts = r.counts ? Object.entries(r.counts) : [];
    const total = counts.reduce((n, [, c]) => n + c, 0);
    return (
      `<p data-refresh-outcome>${r.outcome ? badge(r.outcome, r.outcomeText ?? r.outcome) : badge('Running', 'in progress')} ${r.step && !r.outcome ? `<strong>${esc(stepText(r.step))}</strong> ` : ''}${when(r.updatedAt, v)}</p>` +
      (r.failure
        ? folded(`${r.failedStep ? `while ${stepText(r.failedStep)}: ` : ''}${r.failure}`, r.failureDetail)
        : '') +
      (counts.length
        ? `<details data-refresh-counts><summary>${esc(total)} rows changed in ${esc(counts.length)} steps</summary><p class="small">${counts.map(([k, n]) => `${esc(k)} ${esc(n)}`).join(' · ')}</p></details>`
        : '')
    );
  });
  const showRefresh = e.name === 'uat' || (e.lastRefresh.ok && e.lastRefresh.value) || !e.lastRefresh.ok;
  return `<article class="env${down ? ' is-down' : ''}" id="env-${esc(e.name)}" data-environment="${esc(e.name)}"><h2>${esc(e.name.toUpperCase())}</h2>${health}${running}${progress}${queued}${last}${approvals}${backups}${showRefresh ? refresh : ''}</article>`;
}

/** Light and dark palettes; every text colour ≥ 4.5:1 on its background (WCAG AA), checked by axe in the browser test. */
export const DASHBOARD_CSS = `
:root{color-scheme:light dark;--bg:#ffffff;--fg:#1f2328;--muted:#59636e;--ok:#1a7f37;--bad:#cf222e;--warn:#8a5b00;--info:#0969da;--line:#d0d7de;--downbg:#cf222e;--downfg:#ffffff;--attbg:#fff8f0}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;--ok:#3fb950;--bad:#ff7b72;--warn:#d29922;--info:#58a6ff;--line:#3d444d;--downbg:#b62324;--downfg:#ffffff;--attbg:#161b22}}
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;padding:12px;background:var(--bg);color:var(--fg)}
header{display:flex;flex-wrap:wrap;gap:.5em 1em;align-items:baseline;margin-bottom:12px}h1{font-size:1.25em;margin:0}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:12px}
.env{border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:0}.env.is-down{border:2px solid var(--bad)}h2{margin:.2em 0 .4em;font-size:1.15em}
h3{font-size:.8em;text-transform:uppercase;letter-spacing:.05em;margin:.9em 0 .2em;color:var(--muted)}p{margin:.2em 0}
.version{font-size:1.6em;font-weight:600}.version.stopped{text-decoration:line-through}.small,.rel{font-size:.85em;color:var(--muted)}.muted{color:var(--muted)}
.reason{overflow-wrap:anywhere}.unavailable{color:var(--bad)}code{font-size:.9em;overflow-wrap:anywhere}pre.raw{white-space:pre-wrap;overflow-wrap:anywhere;font-size:.8em;max-height:20em;overflow:auto}
.badge{display:inline-block;padding:0 .45em;border-radius:1em;border:1px solid currentColor;font-size:.85em;font-weight:600}
.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}.info{color:var(--info)}
.tag{display:inline-block;padding:0 .5em;border-radius:4px;font-weight:700;font-size:.85em;border:1px solid currentColor}
.tag.down{background:var(--downbg);color:var(--downfg);border-color:var(--downbg)}.tag.failed{color:var(--bad)}.tag.waiting{color:var(--warn)}.tag.info,.tag.unknown{color:var(--muted)}.tag.up{color:var(--ok)}
.health{font-size:1.05em;margin:.2em 0 .4em}
.attention{border:2px solid var(--bad);background:var(--attbg);border-radius:8px;padding:6px 12px;margin-bottom:12px}.attention.clear{border:1px solid var(--line)}
.attention h2{font-size:1em;margin:.2em 0}.attention ul{list-style:none;margin:0;padding:0}.att{padding:6px 0;border-top:1px solid var(--line);overflow-wrap:anywhere}.att:first-child{border-top:0}
table{width:100%;border-collapse:collapse;font-size:.9em}th,td{text-align:left;padding:3px 4px;border-bottom:1px solid var(--line);vertical-align:top;overflow-wrap:anywhere}
tr.expired td{color:var(--muted)}progress{width:60%;vertical-align:middle}
.problems{border:1px solid var(--bad);border-radius:8px;padding:6px 12px;margin-bottom:12px}`;

export function renderDashboard(doc: StatusDocument, o: { refreshSeconds?: number; nonce: string }): string {
  const v: View = { now: new Date(doc.generatedAt), tz: doc.displayTimeZone ?? 'UTC' };
  const problems = doc.problems.length
    ? `<div class="problems" role="alert"><strong>Some parts could not be read:</strong><ul>${doc.problems.map((p) => `<li>${esc(p.environment)} ${esc(p.part)}: [${esc(p.code)}] ${esc(p.message)}</li>`).join('')}</ul></div>`
    : '';
  // an environment that is down comes first
  const envs = [...doc.environments].sort(
    (a, b) =>
      Number(b.health.ok && b.health.value.state === 'down') -
      Number(a.health.ok && a.health.value.state === 'down'),
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
${o.refreshSeconds ? `<meta http-equiv="refresh" content="${o.refreshSeconds}">\n` : ''}<meta name="referrer" content="no-referrer">
<title>${doc.attention.some((i) => i.severity === 'down') ? 'DOWN — ' : ''}odoo-mta pipeline — status</title>
<style nonce="${esc(o.nonce)}">${DASHBOARD_CSS}</style></head>
<body><header><h1>odoo-mta pipeline</h1><span class="small">updated ${when(doc.generatedAt, v)} · ${o.refreshSeconds ? `refreshes every ${o.refreshSeconds}s` : 'reload to update (or add &amp;refresh=30 to the address)'} · ${esc(doc.runtime ?? '')} · pipeline ${esc(doc.appVersion ?? '')}</span></header>
${attentionStrip(doc.attention, v)}${problems}<main>${envs.map((e) => envCard(e, v)).join('')}${otherApprovals(doc, v)}</main>
</body></html>`;
}

export function contentSecurityPolicy(nonce: string): string {
  return `default-src 'none'; style-src 'nonce-${nonce}'; img-src 'none'; script-src 'none'; connect-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'`;
}

/** A small page for people (401, 400): no raw JSON, what to do, nothing that would leak. */
function notice(status: number, title: string, body: string): HttpResponseInit {
  const nonce = randomBytes(16).toString('base64');
  return {
    status,
    body: `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="referrer" content="no-referrer"><title>${esc(title)} — odoo-mta pipeline</title><style nonce="${nonce}">${DASHBOARD_CSS}main{display:block;max-width:40em}</style></head><body><main><h1>${esc(title)}</h1>${body}</main></body></html>`,
    headers: { ...PAGE_HEADERS, 'content-security-policy': contentSecurityPolicy(nonce) },
  };
}

const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
};

/** Per-process key of the comparison: both sides are HMAC'd, so the compare is constant-time and length-blind. */
const COMPARE_KEY = randomBytes(32);
/** Whether `presented` is the read-only key (HMAC-SHA256 of both, compared in constant time). */
export function isReadKey(presented: string | null | undefined, configured: string | undefined): boolean {
  if (!presented || !configured) return false;
  const h = (v: string) => createHmac('sha256', COMPARE_KEY).update(v, 'utf8').digest();
  return timingSafeEqual(h(presented), h(configured));
}

/**
 * GET /api/dashboard — an ANONYMOUS route (so that a person without the key gets a page, not the
 * host's raw 401) that checks the read-only key itself: `?key=` or the `x-status-key` header must be
 * STATUS_READ_KEY. That key opens this page (HTML, or the status JSON with `?format=json`) and nothing
 * else: every route that changes something keeps its function key (or Entra ID).
 */
export async function dashboard(req: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  let readKey: string | undefined;
  try {
    readKey = loadConfig(process.env).STATUS_READ_KEY;
  } catch {
    readKey =
      process.env.STATUS_READ_KEY && process.env.STATUS_READ_KEY.length >= 32
        ? process.env.STATUS_READ_KEY
        : undefined;
  }
  if (!readKey)
    return notice(
      503,
      'The status page is closed',
      '<p>This pipeline has no read-only status key configured (setting <code>STATUS_READ_KEY</code>), so the page is not served.</p><p>Operators can read the same status with <code>odoo-pipeline status</code>.</p>',
    );
  const presented = req.query.get('key') ?? req.headers.get('x-status-key');
  if (!isReadKey(presented, readKey)) {
    context.warn(`dashboard: ${presented ? 'a wrong' : 'no'} read-only key presented`);
    return notice(
      401,
      'This status page needs its link',
      `<p>${presented ? 'The key in this link is not (or no longer) valid.' : 'This address needs the read-only key of the status page.'}</p><p>Ask an operator for the status link (it ends in <code>?key=…</code>). It only shows what runs and what waits: it cannot request deploys.</p><p>Operators can also run <code>odoo-pipeline status</code>.</p>`,
    );
  }
  const rawRefresh = req.query.get('refresh');
  // no timed reload unless the reader asks for one (`?refresh=N`; `off` or absent: none)
  const refreshSeconds =
    rawRefresh === null || rawRefresh === '' || rawRefresh === 'off' ? undefined : Number(rawRefresh);
  const backups = parseBackupCount(req.query.get('backups'));
  const format = req.query.get('format') ?? 'html';
  const problem =
    refreshSeconds !== undefined &&
    (!Number.isInteger(refreshSeconds) || refreshSeconds < 5 || refreshSeconds > 3600)
      ? 'refresh must be an integer number of seconds from 5 to 3600'
      : typeof backups === 'string'
        ? backups
        : !['html', 'json'].includes(format)
          ? 'format must be html or json'
          : undefined;
  if (problem) return notice(400, 'Bad request', `<p>${esc(problem)}</p>`);
  const doc = await collectStatus(context, { backups: typeof backups === 'number' ? backups : 5 });
  if (format === 'json')
    return {
      status: 200,
      jsonBody: doc,
      headers: { 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' },
    };
  const nonce = randomBytes(16).toString('base64');
  return {
    status: 200,
    body: renderDashboard(doc, { refreshSeconds, nonce }),
    headers: { ...PAGE_HEADERS, 'content-security-policy': contentSecurityPolicy(nonce) },
  };
}

app.http('dashboard', {
  route: 'dashboard',
  methods: ['GET'],
  authLevel: 'anonymous',
  extraInputs: [df.input.durableClient()],
  handler: dashboard,
});
