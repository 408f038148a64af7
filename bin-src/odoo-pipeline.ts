/**
 * `odoo-pipeline` — the operator CLI. It talks to the pipeline's HTTP API (the embedded local host or the
 * Azure function app) with a function key; see docs/CLI.md. Arguments are parsed with node:util
 * `parseArgs` (strict: an unknown option is a usage error).
 */
import { parseArgs } from 'node:util';
import { Api, CliError, EXIT, messageOf, type ExitCode } from './api';
import {
  at,
  fitTable,
  formatBytes,
  formatDuration,
  paint,
  paintOutcome,
  progressText,
  termOf,
  wrapWords,
  type Term,
} from './format';
import {
  formatAbsolute,
  kindText,
  needsText,
  outcomeText,
  progressOf,
  stepText,
  summarizeFailure,
  failureOf,
  type AttentionItem,
  type BackupView,
  type EnvironmentStatus,
  type PendingApprovalView,
  type StatusDocument,
} from '../shared/domain/status-view';

export interface Io {
  stdout: { write(s: string): unknown; isTTY?: boolean; columns?: number };
  stderr: { write(s: string): unknown };
  env: Record<string, string | undefined>;
  /** clock and sleep (tests may replace them) */
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
}

const ENVS = ['uat', 'prod'] as const;
const VERSION_RE = /^[0-9]+\.[0-9]+\.[0-9]+(?:[-+][0-9A-Za-z.-]+)?$/;
const SHA_RE = /^[0-9a-f]{40}$/;
const DEPLOY_ID_RE = /^deploy-[a-z0-9-]+-[A-Za-z0-9._-]+$/;
const LIVE = new Set(['Running', 'Pending', 'ContinuedAsNew', 'Suspended', 'Waiting']);

export const EXIT_CODES_HELP = `Exit codes:
  0  ok
  1  the operation failed (deploy failed or rolled back, unknown deployment, request refused, corrupt backup)
  2  usage error (unknown command or option, bad argument; also a 400 answer from the API)
  3  the pipeline is unreachable or refused the key (connection error, 401/403), or answered 502-504
     (a dependency it needs is down or not configured: the message names it)
  4  timeout (an HTTP request, or --wait ran out of --wait-timeout)`;

const GLOBAL_HELP = `Options for every command:
  --url URL              the pipeline's base URL (env ODOO_PIPELINE_URL; default http://127.0.0.1:7071)
  --key KEY              function key, sent as x-functions-key (env ODOO_PIPELINE_KEY; never printed)
  --token TOKEN          Entra ID access token when App Service authentication guards the app, sent as
                         a Bearer token (env ODOO_PIPELINE_TOKEN; never printed), e.g.
                         ODOO_PIPELINE_TOKEN=$(az account get-access-token --resource api://<app-id> --query accessToken -o tsv)
  --json                 machine-readable JSON on stdout instead of tables
  --request-timeout S    seconds per HTTP request (default 30)
  -h, --help             help (also: odoo-pipeline help <command>)`;

const COMMANDS: Record<string, { usage: string; help: string; options: string[] }> = {
  status: {
    usage: 'status',
    help: 'Per environment: the running version and since when, the last deploy and its outcome, the deploy in progress with its step, the lane queue, pending approvals, the newest backups, the last refresh.',
    options: [],
  },
  deploy: {
    usage:
      'deploy <uat|prod> <version> [--sha SHA] [--force] [--reason TEXT] [--same-version] [--wait] [--wait-timeout 60m] [--interval 2]',
    help: `Request a deploy. UAT: a version that ran on UAT before (its commit comes from the ledger), or any
version with --sha <40-hex commit>; it goes through UAT's lane (one deploy at a time).
PROD: a version that succeeded on UAT, with --reason; it waits for approval (signed links in Slack);
the requester is ODOO_PIPELINE_USER (or the login name), who cannot approve it (four-eyes).
  --force          update all modules (-u all) instead of the changed ones
  --reason TEXT    why (shown to approvers and in the records)
  --same-version   PROD: re-deploy the version PROD already runs (refused without it; e.g. to recover PROD)
  --wait           follow the deploy until it ends: exit 0 Succeeded, 1 otherwise, 4 after --wait-timeout
                   (each finished step with ✓ and its duration, the failed one with ✗, then the outcome)`,
    options: ['sha', 'force', 'reason', 'same-version', 'wait', 'wait-timeout', 'interval'],
  },
  approvals: {
    usage: 'approvals',
    help: 'Pending PROD approvals and rollback decisions: deploy, approver, what for, when the link expires. The links themselves are only in Slack (they are single-use secrets).',
    options: [],
  },
  refresh: {
    usage:
      'refresh [--filestore copy|drop|skip] [--backup fresh|latest] [--reason TEXT] [--wait] [--wait-timeout 120m]',
    help: `Refresh UAT from PROD (anonymized, neutralized), through UAT's lane.
  --filestore copy|drop|skip   copy PROD's filestore, drop attachments of anonymized records, or leave UAT's
  --backup fresh|latest        take a fresh PROD backup, or use the latest verified one (default: the setting)
  --wait                       follow it until it ends (exit 0 succeeded, 1 failed, 4 timeout)`,
    options: ['filestore', 'backup', 'reason', 'wait', 'wait-timeout', 'interval'],
  },
  logs: {
    usage: 'logs <deployment-id> [--name migration.log] [--tail N]',
    help: 'The logs a deploy saved next to its backup (migration.log, container.log, ops-history.log — saved when a deploy fails after the stop).',
    options: ['name', 'tail'],
  },
  backups: {
    usage: 'backups <uat|prod> [--limit N] [--verify <backup-name> [--wait-timeout 60m] [--interval 2]]',
    help: `The newest backups of an environment: time, version, size, state.
States: verified (every part re-read and matched its manifest), corrupt (it did not), complete (manifest
with sizes and sha256, not re-verified yet), incomplete (no manifest: never used for a restore).
  --verify NAME   re-read every part of that backup now (e.g. 20261127T185600Z-1.2.0) and record the result;
                  exit 1 when it is corrupt`,
    options: ['limit', 'verify', 'wait-timeout', 'interval'],
  },
  rollback: {
    usage: 'rollback <uat|prod> [--reason TEXT] [--force] [--wait] [--wait-timeout 60m]',
    help: `UAT: redeploy the previous version recorded in UAT's ledger (the version before the one running now),
     through the lane like any deploy (a failed UAT deploy is already rolled back automatically).
PROD: if a failed PROD deploy is waiting for a rollback decision, show it (the signed one-click rollback
     link was posted to Slack to the approvers; it restores the pre-deploy backup and the previous image).
     Otherwise request a PROD deploy of the previous PROD version — it needs approval like any PROD deploy
     and does not restore a database (see docs/ROLLBACK_GUIDE.md for restoring a backup by hand).`,
    options: ['reason', 'force', 'wait', 'wait-timeout', 'interval'],
  },
  help: { usage: 'help [command]', help: 'This help, or the help of one command.', options: [] },
};

export function usageText(command?: string): string {
  if (command && COMMANDS[command]) {
    const c = COMMANDS[command];
    return `Usage: odoo-pipeline ${c.usage}\n\n${c.help}\n\n${GLOBAL_HELP}\n\n${EXIT_CODES_HELP}\n`;
  }
  return `Usage: odoo-pipeline [options] <command> [arguments]

Operate the odoo-mta deployment pipeline through its HTTP API (local host or Azure).

Commands:
${Object.values(COMMANDS)
  .map((c) => `  ${c.usage}`)
  .join('\n')}

${GLOBAL_HELP}

${EXIT_CODES_HELP}

Examples:
  odoo-pipeline status
  odoo-pipeline deploy uat 1.4.0 --wait
  odoo-pipeline deploy prod 1.4.0 --reason "monthly release"
  odoo-pipeline logs deploy-uat-1.4.0-0123456789ab
  odoo-pipeline backups prod --json
`;
}

const OPTIONS = {
  url: { type: 'string' },
  key: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  'request-timeout': { type: 'string' },
  sha: { type: 'string' },
  force: { type: 'boolean' },
  'same-version': { type: 'boolean' },
  reason: { type: 'string' },
  wait: { type: 'boolean' },
  'wait-timeout': { type: 'string' },
  interval: { type: 'string' },
  filestore: { type: 'string' },
  backup: { type: 'string' },
  name: { type: 'string' },
  tail: { type: 'string' },
  limit: { type: 'string' },
  verify: { type: 'string' },
} as const;
type Values = {
  [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'string' ? string : boolean;
};

const usage = (message: string, command?: string) =>
  new CliError(EXIT.USAGE, `${message}\nRun 'odoo-pipeline help${command ? ` ${command}` : ''}' for usage.`);

/** "90s", "30m", "2h" or a plain number of minutes → ms. */
export function parseDuration(raw: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(raw.trim());
  if (!m) throw usage(`${what} must be a duration like 90s, 30m or 2h (got ${JSON.stringify(raw)})`);
  const n = Number(m[1]) * (m[2] === 's' ? 1000 : m[2] === 'h' ? 3_600_000 : 60_000);
  if (!(n > 0) || n > 7 * 86_400_000) throw usage(`${what} must be more than 0 and at most 7 days`);
  return n;
}

/** Seconds: a plain number means seconds here ("30", "0.5"), or a duration with a unit. */
function seconds(raw: string, what: string): number {
  return parseDuration(/^\d+(?:\.\d+)?$/.test(raw.trim()) ? `${raw.trim()}s` : raw, what);
}

function positiveInt(raw: string | undefined, what: string, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) throw usage(`${what} must be an integer from 1 to ${max}`);
  return n;
}

function env(raw: string | undefined, command: string): (typeof ENVS)[number] {
  if (raw === undefined) throw usage(`${command} needs an environment: uat or prod`, command);
  if (!(ENVS as readonly string[]).includes(raw))
    throw usage(`unknown environment ${JSON.stringify(raw)}: use uat or prod`, command);
  return raw as (typeof ENVS)[number];
}

// ------------------------------------------------------------------------------- runner --

interface Ctx {
  api: Api;
  io: Io;
  json: boolean;
  values: Values;
  now: () => Date;
  sleep: (ms: number) => Promise<void>;
  /** --wait-timeout (default 60 min; refresh 120 min) and --interval (default 2 s), validated before any request */
  waitTimeoutMs: number;
  intervalMs: number;
  /** width and colours of stdout */
  term: Term;
  out(text: string): void;
  err(text: string): void;
}

export async function run(argv: string[], io: Io): Promise<number> {
  const out = (t: string) => void io.stdout.write(t.endsWith('\n') ? t : `${t}\n`);
  const errw = (t: string) => void io.stderr.write(t.endsWith('\n') ? t : `${t}\n`);
  let json = argv.includes('--json');
  let api: Api | undefined;
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    } catch (err) {
      throw usage((err as Error).message.replace(/^TypeError[^:]*: /, ''));
    }
    const values = parsed.values as Values;
    json = !!values.json;
    const [command, ...args] = parsed.positionals;
    if (!command || values.help || command === 'help') {
      const topic = command === 'help' ? args[0] : command;
      if (topic && !COMMANDS[topic]) throw usage(`unknown command ${JSON.stringify(topic)}`);
      if (!command && !values.help) {
        errw(usageText());
        return EXIT.USAGE;
      }
      out(usageText(topic));
      return EXIT.OK;
    }
    const spec = COMMANDS[command];
    if (!spec) throw usage(`unknown command ${JSON.stringify(command)}`);
    const global = new Set(['url', 'key', 'token', 'json', 'help', 'request-timeout']);
    for (const k of Object.keys(values))
      if (!global.has(k) && !spec.options.includes(k))
        throw usage(`--${k} is not an option of ${command}`, command);
    const requestTimeoutMs =
      values['request-timeout'] !== undefined
        ? seconds(values['request-timeout'], '--request-timeout')
        : 30_000;
    api = new Api({
      baseUrl: values.url ?? io.env.ODOO_PIPELINE_URL ?? 'http://127.0.0.1:7071',
      key: values.key ?? io.env.ODOO_PIPELINE_KEY,
      token: values.token ?? io.env.ODOO_PIPELINE_TOKEN,
      timeoutMs: requestTimeoutMs,
    });
    const waitTimeoutMs =
      values['wait-timeout'] !== undefined
        ? parseDuration(values['wait-timeout'], '--wait-timeout')
        : command === 'refresh'
          ? 120 * 60_000
          : 60 * 60_000;
    const intervalMs = values.interval !== undefined ? seconds(values.interval, '--interval') : 2000;
    const ctx: Ctx = {
      api,
      waitTimeoutMs,
      intervalMs,
      term: termOf(io.stdout, io.env),
      io,
      json,
      values,
      now: io.now ?? (() => new Date()),
      sleep: io.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
      out: (t) => out(api!.redact(t)),
      err: (t) => errw(api!.redact(t)),
    };
    switch (command) {
      case 'status':
        return await cmdStatus(ctx, args);
      case 'deploy':
        return await cmdDeploy(ctx, args);
      case 'approvals':
        return await cmdApprovals(ctx, args);
      case 'refresh':
        return await cmdRefresh(ctx, args);
      case 'logs':
        return await cmdLogs(ctx, args);
      case 'backups':
        return await cmdBackups(ctx, args);
      case 'rollback':
        return await cmdRollback(ctx, args);
    }
    throw usage(`unknown command ${JSON.stringify(command)}`);
  } catch (err) {
    const e =
      err instanceof CliError
        ? err
        : new CliError(EXIT.FAILED, `unexpected error: ${(err as Error)?.message ?? String(err)}`);
    const msg = api ? api.redact(e.message) : e.message;
    if (json) errw(JSON.stringify({ error: { exitCode: e.exitCode, message: msg } }));
    else errw(`odoo-pipeline: ${msg}`);
    return e.exitCode;
  }
}

function noMoreArgs(args: string[], n: number, command: string): void {
  if (args.length > n) throw usage(`unexpected argument ${JSON.stringify(args[n])}`, command);
}

// ------------------------------------------------------------------------------ status --

/** Times in the display time zone the pipeline reports (DISPLAY_TIME_ZONE), relative to the answer's time. */
interface Shown {
  now: Date;
  tz: string;
  term: Term;
}

const SEVERITY_LABEL: Record<AttentionItem['severity'], string> = {
  down: 'DOWN',
  failed: 'FAILED',
  waiting: 'WAITING',
  info: 'NOTE',
};

/** The attention strip: what is down, what waits for whom and until when, what failed — each with the next step. */
export function attentionText(items: AttentionItem[], v: Shown): string {
  if (!items.length) return `${paint(v.term, 'green', 'All clear')}: nothing is down or waiting for anyone.`;
  const ind = ' '.repeat(11);
  const w = v.term.width;
  const lines = ['NEEDS ATTENTION'];
  for (const i of items) {
    const label = SEVERITY_LABEL[i.severity];
    const colour =
      i.severity === 'down' || i.severity === 'failed' ? 'red' : i.severity === 'waiting' ? 'yellow' : 'dim';
    lines.push(`  ${paint(v.term, colour, label.padEnd(8))} ${wrapWords(i.title, w && w - 11, ind)}`);
    if (i.detail) lines.push(`${ind}${wrapWords(i.detail, w && w - 11, ind)}`);
    if (i.until) lines.push(`${ind}${wrapWords(`until ${at(i.until, v.now, v.tz)}`, w && w - 11, ind)}`);
    lines.push(
      `${ind}${wrapWords(`next: ${i.next.text}${i.next.command ? ` ${i.next.command}` : ''}`, w && w - 11, ind)}`,
    );
  }
  return lines.join('\n');
}

function envBlock(e: EnvironmentStatus, v: Shown): string {
  const { now, tz, term } = v;
  const h = e.health.ok ? e.health.value : undefined;
  const down = h?.state === 'down';
  const state = !h ? 'UNKNOWN' : down ? 'DOWN' : h.state === 'up' ? 'UP' : 'UNKNOWN';
  const head = `${e.name.toUpperCase()} — ${state}: ${h ? h.headline.replace(/^[A-Z0-9-]+(?: is DOWN:?|:)? ?/, '') : `health unavailable: [${!e.health.ok ? e.health.error.code : '?'}]`}`;
  // wrapped plain, then painted (escape codes take no columns)
  const lines: string[] = [
    wrapWords(head, term.width, '    ').replace(
      `${e.name.toUpperCase()} — ${state}`,
      `${paint(term, 'bold', e.name.toUpperCase())} — ${paintOutcome(term, state)}`,
    ),
  ];
  const ind = ' '.repeat(15);
  const row = (label: string, text: string) =>
    lines.push(`  ${label.padEnd(13)}${wrapWords(text, term.width && term.width - 15, ind)}`);
  const un = (s: { ok: false; error: { code: string; message: string } }) =>
    `unavailable: [${s.error.code}] ${s.error.message}`;
  const r = e.running;
  row(
    down ? 'last release' : 'running',
    !r.ok
      ? un(r)
      : r.value
        ? `${r.value.version}${down ? ' (not serving)' : ''} (${r.value.sha.slice(0, 12)}) since ${at(r.value.since, now, tz)}${r.value.previousVersion ? `, previous ${r.value.previousVersion}` : ''}`
        : 'nothing recorded yet',
  );
  const p = e.inProgress;
  row(
    'in progress',
    !p.ok
      ? un(p)
      : p.value
        ? `${kindText(p.value.kind, e.name)} ${p.value.version ?? ''}: ${progressText(p.value.progress)}${p.value.elapsedMs !== undefined ? `, ${formatDuration(p.value.elapsedMs)} so far` : ''} — ${p.value.id}`
        : 'idle',
  );
  if (e.queued.ok && e.queued.value.length) row('queued', e.queued.value.join(', '));
  const d = e.lastDeploy;
  row(
    'last deploy',
    !d.ok
      ? un(d)
      : d.value
        ? `${paintOutcome(term, d.value.outcome, d.value.outcomeText)} ${d.value.version ?? ''} at ${at(d.value.finishedAt, now, tz)} — ${d.value.id}`
        : 'none',
  );
  if (d.ok && d.value?.failure)
    row('', `${d.value.failedStepText ? `while ${d.value.failedStepText}: ` : ''}${d.value.failure}`);
  if (d.ok && d.value?.logs?.length) row('', `logs: odoo-pipeline logs ${d.value.id}`);
  const a = e.pendingApprovals;
  row('approvals', !a.ok ? un(a) : a.value.length ? approvalsSummary(a.value, v) : 'none pending');
  const b = e.backups;
  row(
    'backups',
    !b.ok
      ? un(b)
      : b.value.length
        ? `${b.value.length} shown — newest ${b.value[0].id}, ${formatBytes(b.value[0].sizeBytes)}, ${paintOutcome(term, b.value[0].state)}`
        : 'none',
  );
  const f = e.lastRefresh;
  if (e.name === 'uat' || !f.ok || f.value) {
    row(
      'last refresh',
      !f.ok
        ? un(f)
        : f.value
          ? `${f.value.outcome ? paintOutcome(term, f.value.outcome, f.value.outcomeText ?? f.value.outcome) : `in progress (${stepText(f.value.step)})`} at ${at(f.value.updatedAt, now, tz)} — ${f.value.id}`
          : 'none',
    );
    if (f.ok && f.value?.failure) row('', f.value.failure);
  }
  return lines.join('\n');
}

/** "approval: needs 1 of alice, bob until …" per deploy and kind of decision. */
function approvalsSummary(list: PendingApprovalView[], v: Shown): string {
  const groups = new Map<string, PendingApprovalView[]>();
  for (const a of list)
    groups.set(`${a.deployment} ${a.action}`, [...(groups.get(`${a.deployment} ${a.action}`) ?? []), a]);
  return [...groups.values()]
    .map((g) => {
      const open = g.filter((x) => !x.expired);
      const people = [...new Set((open.length ? open : g).map((x) => x.approver))];
      const needed = Math.max(1, (g[0].required ?? 1) - (g[0].received ?? 0));
      return `${g[0].action === 'rollback' ? 'rollback decision' : `approval of ${g[0].version ?? g[0].deployment}`}: ${needsText({ people, needed })}, ${open.length ? `until ${at(open.map((x) => x.expiresAt).sort()[0], v.now, v.tz)}` : 'EXPIRED'}`;
    })
    .join('; ');
}

async function cmdStatus(c: Ctx, args: string[]): Promise<number> {
  noMoreArgs(args, 0, 'status');
  const doc = await c.api.call<StatusDocument>('GET', 'status');
  if (c.json) {
    c.out(JSON.stringify(doc, null, 2));
    return EXIT.OK;
  }
  const v: Shown = { now: new Date(doc.generatedAt), tz: doc.displayTimeZone ?? 'UTC', term: c.term };
  c.out(
    `${wrapWords(`odoo-mta pipeline at ${c.api.displayUrl} (${doc.runtime ?? '?'}, pipeline ${doc.appVersion ?? '?'}) — ${formatAbsolute(doc.generatedAt, v.tz)}`, c.term.width, '  ')}\n`,
  );
  c.out(`${attentionText(doc.attention ?? [], v)}\n`);
  // an environment that is down comes first
  const envs = [...doc.environments].sort(
    (a, b) =>
      Number(b.health?.ok && b.health.value.state === 'down') -
      Number(a.health?.ok && a.health.value.state === 'down'),
  );
  c.out(envs.map((e) => envBlock(e, v)).join('\n\n'));
  if (doc.problems.length)
    c.err(`\n${doc.problems.length} part(s) could not be read (shown as unavailable above)`);
  return EXIT.OK;
}

// --------------------------------------------------------------------------- approvals --

function approvalsTable(list: PendingApprovalView[], v: Shown): string {
  const t = fitTable(
    ['deployment', 'version', 'requested by', 'approver', 'for', 'needs', 'expires'],
    list.map((a) => [
      a.deployment,
      a.version,
      a.requestedBy,
      a.approver,
      a.action,
      a.required !== undefined ? `${Math.max(1, a.required - (a.received ?? 0))} more` : undefined,
      a.expired ? 'EXPIRED' : at(a.expiresAt, v.now, v.tz),
    ]),
    { width: v.term.width, dropOrder: [2, 5, 1, 4], shrink: 0 },
  );
  return t.text;
}

async function cmdApprovals(c: Ctx, args: string[]): Promise<number> {
  noMoreArgs(args, 0, 'approvals');
  const doc = await c.api.call<StatusDocument>('GET', 'status');
  // `approvals` (every live deploy, Odoo.sh production branches included) when the server sends it
  const all = doc.approvals?.ok ? doc.approvals.value : undefined;
  const unavailable = all ? [] : doc.environments.filter((e) => !e.pendingApprovals.ok);
  const list =
    all ?? doc.environments.flatMap((e) => (e.pendingApprovals.ok ? e.pendingApprovals.value : []));
  if (c.json)
    c.out(
      JSON.stringify(
        { count: list.length, items: list, unavailable: unavailable.map((e) => e.name) },
        null,
        2,
      ),
    );
  else if (list.length)
    c.out(
      `${approvalsTable(list, { now: new Date(doc.generatedAt), tz: doc.displayTimeZone ?? 'UTC', term: c.term })}\n\nThe signed links were sent to the approvers in Slack; they are never shown here.`,
    );
  else c.out('No pending approvals.');
  if (unavailable.length)
    throw new CliError(
      EXIT.FAILED,
      `approvals of ${unavailable.map((e) => e.name).join(', ')} could not be read`,
    );
  return EXIT.OK;
}

// ------------------------------------------------------------------------------ deploy --

interface DeploymentView {
  id: string;
  name?: string;
  runtimeStatus: string;
  version?: string;
  status?: {
    kind?: string;
    step?: string;
    outcome?: string;
    reason?: string;
    elapsedMs?: number;
    durations?: Record<string, number>;
    approvals?: { required?: number; received?: unknown[] };
  } | null;
  outcome?: string | null;
  result?: {
    outcome?: string;
    reason?: string;
    failure?: string;
    failedStep?: string;
    logs?: string[];
    durations?: Record<string, number>;
  } | null;
}

interface Followed {
  done: boolean;
  ok: boolean;
  /** the step being worked on (plain words) */
  line: string;
  /** steps finished so far, in order, with their durations */
  steps?: Array<{ name: string; ms: number }>;
  /** the failed step (shown with ✗) */
  failedStep?: string;
  /** the outcome, printed once at the end */
  final?: string;
  raw: unknown;
}

/**
 * Poll `get` until done or the wait timeout, like `gh run watch`: each finished step once as
 * "✓ step  12s"; the step in progress as a line redrawn in place on a terminal (printed once per
 * change otherwise); at the end the failed step as "✗ step" and the outcome ONCE.
 */
async function follow(c: Ctx, get: () => Promise<Followed>): Promise<Followed> {
  const { waitTimeoutMs: timeoutMs, intervalMs } = c;
  const tty = !!c.io.stdout.isTTY && !c.json;
  const deadline = c.now().getTime() + timeoutMs;
  const startedAt = c.now().getTime();
  let last = '';
  let shown = 0;
  let live = false;
  const clear = () => {
    if (tty && live) c.io.stdout.write('\r\x1b[2K');
    live = false;
  };
  for (;;) {
    const f = await get();
    if (!c.json) {
      const steps = f.steps ?? [];
      if (steps.length > shown) {
        clear();
        for (const st of steps.slice(shown))
          c.out(`  ${paint(c.term, 'green', '✓')} ${stepText(st.name).padEnd(40)} ${formatDuration(st.ms)}`);
        shown = steps.length;
        last = '';
      }
      if (!f.done && f.line !== last) {
        const text = `  ${paint(c.term, 'yellow', '*')} ${f.line}`;
        if (tty) {
          c.io.stdout.write(
            `\r\x1b[2K${c.api.redact(text)} (${formatDuration(c.now().getTime() - startedAt)} so far)`,
          );
          live = true;
        } else c.out(text);
        last = f.line;
      }
    }
    if (f.done) {
      clear();
      if (!c.json && f.failedStep) c.out(`  ${paint(c.term, 'red', '✗')} ${stepText(f.failedStep)}`);
      return f;
    }
    if (c.now().getTime() >= deadline) {
      clear();
      throw new CliError(
        EXIT.TIMEOUT,
        `still not finished after ${formatDuration(timeoutMs)} (last: ${f.line}); it goes on running — check it with 'odoo-pipeline status'`,
        f.raw,
      );
    }
    await c.sleep(Math.min(intervalMs, Math.max(0, deadline - c.now().getTime())));
  }
}

/** Finished steps in the order they ran (the orchestration's `durations`, current step excluded while live). */
function stepsOf(
  durations: Record<string, number> | undefined,
  current: string | undefined,
  done: boolean,
): Array<{ name: string; ms: number }> {
  return Object.entries(durations ?? {})
    .filter(([name, ms]) => typeof ms === 'number' && (done || name !== current))
    .map(([name, ms]) => ({ name, ms }));
}

async function followDeployment(c: Ctx, id: string): Promise<number> {
  const f = await follow(c, async () => {
    const r = await c.api.request<DeploymentView>('GET', `deployments/${encodeURIComponent(id)}`);
    if (r.status === 404)
      return {
        done: false,
        ok: false,
        line: 'waiting for its turn (another deploy holds the environment)',
        raw: r.body,
      };
    if (r.status >= 400) throw new CliError(EXIT.FAILED, `${messageOf(r.body)} (HTTP ${r.status})`);
    const d = r.body;
    const step = d.status?.step;
    const kind = d.status?.kind ?? (id.startsWith('deploy-prod-') ? 'deployProd' : 'deployUat');
    if (!LIVE.has(d.runtimeStatus)) {
      const outcome = d.outcome ?? d.result?.outcome ?? d.runtimeStatus;
      // the cause comes from the failure (deployProd's `reason` is the requester's words), as on the status page
      const f =
        outcome === 'Succeeded'
          ? {}
          : failureOf({
              name: kind,
              instanceId: id,
              runtimeStatus: d.runtimeStatus,
              createdTime: '',
              lastUpdatedTime: '',
              customStatus: d.status,
              output: d.result,
            });
      const sum = summarizeFailure(f.text);
      const failedStep = f.failedStep;
      const final = `${id}: ${paintOutcome(c.term, outcome, outcomeText(outcome))}${sum ? ` — ${failedStep ? `while ${stepText(failedStep)}: ` : ''}${sum.summary}` : ''}`;
      return {
        done: true,
        ok: outcome === 'Succeeded',
        line: outcome,
        steps: stepsOf(d.result?.durations ?? d.status?.durations, undefined, true).filter(
          (x) => x.name !== failedStep,
        ),
        failedStep,
        final,
        raw: d,
      };
    }
    const appr = d.status?.approvals;
    const p = progressOf(kind, step);
    const needed = appr?.required
      ? Math.max(1, appr.required - (Array.isArray(appr.received) ? appr.received.length : 0))
      : undefined;
    const extra =
      p.waitingForPerson && needed
        ? ` (needs ${needed} more approval${needed > 1 ? 's' : ''}: the approvers have their link in Slack)`
        : '';
    return {
      done: false,
      ok: false,
      line: `${p.text ?? p.step}${extra}`,
      steps: stepsOf(d.status?.durations, step, false),
      raw: d,
    };
  });
  if (c.json) c.out(JSON.stringify(f.raw, null, 2));
  else if (f.final) c.out(f.final);
  if (!f.ok) {
    const logs = (f.raw as DeploymentView)?.result?.logs;
    if (!c.json && logs?.length) c.err(`logs saved: odoo-pipeline logs ${id}`);
    return EXIT.FAILED;
  }
  return EXIT.OK;
}

async function requestDeploy(
  c: Ctx,
  environment: string,
  version: string,
  extra: Record<string, unknown> = {},
): Promise<{ id: string; body: Record<string, unknown> }> {
  const body: Record<string, unknown> = { environment, version, ...extra };
  if (c.values.force) body.force = true;
  if (c.values.sha !== undefined) body.sha = c.values.sha;
  if (c.values.reason !== undefined) body.reason = c.values.reason;
  if (environment === 'prod') {
    // who asks: the API refuses a PROD request without it (four-eyes: the requester cannot approve)
    body.requestedBy = c.io.env.ODOO_PIPELINE_USER ?? c.io.env.USER ?? c.io.env.USERNAME ?? 'odoo-pipeline';
    delete body.force;
    if (c.values['same-version']) body.sameVersion = true;
  }
  const res = await c.api.call<Record<string, unknown>>('POST', 'deployments', { body });
  const id =
    typeof res.id === 'string' ? res.id : typeof res.instanceId === 'string' ? res.instanceId : undefined;
  if (!id)
    throw new CliError(
      EXIT.FAILED,
      `the pipeline accepted the request but named no deployment id: ${JSON.stringify(res).slice(0, 300)}`,
    );
  return { id, body: res };
}

async function cmdDeploy(c: Ctx, args: string[]): Promise<number> {
  const environment = env(args[0], 'deploy');
  const version = args[1];
  if (!version) throw usage('deploy needs a version, e.g. deploy uat 1.4.0', 'deploy');
  if (!VERSION_RE.test(version))
    throw usage(`version must be a semantic version like 1.4.0 (got ${JSON.stringify(version)})`, 'deploy');
  noMoreArgs(args, 2, 'deploy');
  if (c.values.sha !== undefined && !SHA_RE.test(c.values.sha))
    throw usage('--sha must be a 40-character lowercase hex commit id', 'deploy');
  if (environment === 'prod') {
    if (c.values.sha !== undefined)
      throw usage('--sha is for UAT only (PROD deploys the commit that ran on UAT)', 'deploy');
    if (c.values.force)
      throw usage('--force is for UAT only (PROD updates the modules that changed)', 'deploy');
  } else if (c.values['same-version']) {
    throw usage(
      '--same-version is for PROD only (a UAT redeploy of the same version is always allowed)',
      'deploy',
    );
  }
  if (environment === 'prod') {
    if (!c.values.reason?.trim())
      throw usage('a PROD deploy needs --reason "why" (the approvers read it)', 'deploy');
  }
  const { id, body } = await requestDeploy(c, environment, version);
  const warnings = Array.isArray(body.warnings)
    ? body.warnings.filter((w): w is string => typeof w === 'string')
    : [];
  if (!c.json) for (const w of warnings) c.err(`warning: ${w}`);
  if (!c.json || !c.values.wait) {
    if (c.json) c.out(JSON.stringify(body, null, 2));
    else
      c.out(
        `${environment.toUpperCase()} deploy of ${version} requested: ${id}${typeof body.via === 'string' ? ` (${body.via})` : ''}${environment === 'prod' ? '\nIt waits for approval: the approvers got signed links in Slack (odoo-pipeline approvals).' : ''}`,
      );
  }
  return c.values.wait ? followDeployment(c, id) : EXIT.OK;
}

// ----------------------------------------------------------------------------- refresh --

async function cmdRefresh(c: Ctx, args: string[]): Promise<number> {
  noMoreArgs(args, 0, 'refresh');
  const filestore = c.values.filestore;
  if (filestore !== undefined && !['copy', 'drop', 'skip'].includes(filestore))
    throw usage('--filestore must be copy, drop or skip', 'refresh');
  const backup = c.values.backup;
  if (backup !== undefined && !['fresh', 'latest'].includes(backup))
    throw usage('--backup must be fresh or latest', 'refresh');
  const body: Record<string, unknown> = { source: 'prod', target: 'uat' };
  if (filestore) body.filestore = filestore;
  if (backup) body.backup = backup;
  if (c.values.reason !== undefined) body.reason = c.values.reason;
  const res = await c.api.call<Record<string, unknown>>('POST', 'refresh', { body });
  const id =
    typeof res.id === 'string' ? res.id : typeof res.instanceId === 'string' ? res.instanceId : undefined;
  if (!id)
    throw new CliError(
      EXIT.FAILED,
      `the pipeline accepted the refresh but named no id: ${JSON.stringify(res).slice(0, 300)}`,
    );
  if (!c.values.wait) {
    c.out(c.json ? JSON.stringify(res, null, 2) : `Refresh of UAT from PROD requested: ${id}`);
    return EXIT.OK;
  }
  if (!c.json) c.out(`Refresh of UAT from PROD requested: ${id}`);
  const f = await follow(c, async () => {
    const r = await c.api.request<Record<string, unknown>>('GET', `refresh/${encodeURIComponent(id)}`);
    if (r.status === 404)
      return {
        done: false,
        ok: false,
        line: 'waiting for its turn (another piece of work holds UAT)',
        raw: r.body,
      };
    if (r.status >= 400) throw new CliError(EXIT.FAILED, `${messageOf(r.body)} (HTTP ${r.status})`);
    const b = r.body ?? {};
    const cs = (b.status ?? b.customStatus ?? {}) as Record<string, unknown>;
    const result = (b.result ?? b.output ?? {}) as Record<string, unknown>;
    const runtime = String(b.runtimeStatus ?? 'Running');
    const step = String(cs.step ?? b.step ?? runtime);
    if (!LIVE.has(runtime)) {
      const outcome = String(b.outcome ?? result.outcome ?? runtime);
      // the result's `reason` is the failure; the custom status's `reason` is the request's words
      const sum =
        outcome === 'Succeeded' || outcome === 'Completed'
          ? undefined
          : summarizeFailure((result.reason ?? cs.error) as string | undefined);
      const failedStep = typeof result.failedStep === 'string' ? result.failedStep : undefined;
      const steps = Object.entries((result.durations ?? cs.durations ?? {}) as Record<string, number>)
        .map(([name, ms]) => ({ name, ms }))
        .filter((x) => x.name !== failedStep);
      return {
        done: true,
        ok: outcome === 'Succeeded' || outcome === 'Completed',
        line: outcome,
        steps,
        failedStep,
        final: `${id}: ${paintOutcome(c.term, outcome, outcomeText(outcome))}${sum ? ` — ${sum.summary}` : ''}`,
        raw: b,
      };
    }
    const steps = Object.entries((cs.durations ?? {}) as Record<string, number>)
      .filter(([name]) => name !== step)
      .map(([name, ms]) => ({ name, ms }));
    return { done: false, ok: false, line: stepText(step), steps, raw: b };
  });
  if (c.json) c.out(JSON.stringify(f.raw, null, 2));
  else if (f.final) c.out(f.final);
  return f.ok ? EXIT.OK : EXIT.FAILED;
}

// -------------------------------------------------------------------------------- logs --

async function cmdLogs(c: Ctx, args: string[]): Promise<number> {
  const id = args[0];
  if (!id)
    throw usage(
      'logs needs a deployment id, e.g. logs deploy-uat-1.4.0-0123456789ab (see odoo-pipeline status)',
      'logs',
    );
  noMoreArgs(args, 1, 'logs');
  if (!DEPLOY_ID_RE.test(id))
    throw usage(`${JSON.stringify(id)} is not a deployment id (deploy-<env>-<version>-<sha12>)`, 'logs');
  const tail = positiveInt(c.values.tail, '--tail', 100_000);
  const res = await c.api.call<{
    id: string;
    outcome?: string | null;
    logs: Array<{ name: string; path: string; size: number; text: string; truncated: boolean }>;
    message?: string;
  }>('GET', `deployments/${encodeURIComponent(id)}/logs`, {
    query: { name: c.values.name, tail },
    notFound: `no deployment ${id}`,
  });
  if (c.json) {
    c.out(JSON.stringify(res, null, 2));
    return EXIT.OK;
  }
  if (!res.logs.length) {
    c.out(`${id}${res.outcome ? ` (${res.outcome})` : ''}: ${res.message ?? 'no logs'}`);
    return EXIT.OK;
  }
  for (const l of res.logs)
    c.out(
      `===== ${l.name} (${formatBytes(l.size)}${l.truncated ? ', end only' : ''}) — ${l.path}\n${l.text}`,
    );
  return EXIT.OK;
}

// ----------------------------------------------------------------------------- backups --

async function cmdBackups(c: Ctx, args: string[]): Promise<number> {
  const environment = env(args[0], 'backups');
  noMoreArgs(args, 1, 'backups');
  const limit = positiveInt(c.values.limit, '--limit', 200);
  if (c.values.verify !== undefined) {
    const name = c.values.verify.replace(new RegExp(`^${environment}/`), '');
    if (!/^\d{8}T\d{6}Z-[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/.test(name))
      throw usage(
        '--verify takes a backup name like 20261127T185600Z-1.2.0 (see odoo-pipeline backups <env>)',
        'backups',
      );
    // the pipeline verifies in the background (a PROD backup outlasts an HTTP request): 202 + status URL
    const r = await c.api.request<{ id: string; backup: string; statusUrl: string }>(
      'POST',
      `backups/${environment}/${encodeURIComponent(name)}/verify`,
    );
    if (r.status === 404) throw new CliError(EXIT.FAILED, `no backup ${environment}/${name}`);
    if (r.status !== 202)
      throw new CliError(
        r.status === 400 ? EXIT.USAGE : EXIT.FAILED,
        `${messageOf(r.body)} (HTTP ${r.status})`,
      );
    type Verification = {
      runtimeStatus: string;
      result: { id: string; ok: boolean; problems: string[]; state: string; at: string } | null;
    };
    let result: Verification['result'] = null;
    const f = await follow(c, async () => {
      const v = await c.api.call<Verification>('GET', r.body.statusUrl.replace(/^\/api\//, ''));
      result = v.result;
      const done = !['Pending', 'Running', 'ContinuedAsNew'].includes(v.runtimeStatus);
      return {
        done,
        ok: !!v.result?.ok,
        line: `${r.body.backup}: ${done ? (v.result?.state ?? v.runtimeStatus) : 'verifying'}`,
        raw: v,
      };
    });
    const body = result as Verification['result'];
    if (!body)
      throw new CliError(
        EXIT.FAILED,
        `verification of ${r.body.backup} ended ${(f.raw as Verification).runtimeStatus} without a result`,
        f.raw,
      );
    if (c.json) c.out(JSON.stringify(body, null, 2));
    else {
      c.out(`${r.body.backup}: ${paintOutcome(c.term, body.state, body.state)}`);
      if (body.problems?.length) c.out(`  ${body.problems.join('\n  ')}`);
      else c.out(`  every part matches its manifest (size and sha256)`);
    }
    return body.ok ? EXIT.OK : EXIT.FAILED;
  }
  const res = await c.api.call<{ environment: string; count: number; items: BackupView[] }>(
    'GET',
    `backups/${environment}`,
    { query: { limit } },
  );
  if (c.json) {
    c.out(JSON.stringify(res, null, 2));
    return EXIT.OK;
  }
  if (!res.items.length) {
    c.out(`No backups of ${environment}.`);
    return EXIT.OK;
  }
  const now = c.now();
  c.out(
    fitTable(
      ['backup', 'version', 'taken', 'size', 'parts', 'state'],
      res.items.map((b) => [
        b.id,
        b.version,
        at(b.createdAt, now),
        formatBytes(b.sizeBytes),
        b.parts.join(','),
        b.state + (b.verifiedAt ? ` ${at(b.verifiedAt, now)}` : ''),
      ]),
      { width: c.term.width, dropOrder: [4, 1, 3], shrink: 2 },
    ).text,
  );
  return EXIT.OK;
}

// ---------------------------------------------------------------------------- rollback --

async function cmdRollback(c: Ctx, args: string[]): Promise<number> {
  const environment = env(args[0], 'rollback');
  noMoreArgs(args, 1, 'rollback');
  const doc = await c.api.call<StatusDocument>('GET', 'status');
  const e = doc.environments.find((x) => x.name === environment);
  if (!e) throw new CliError(EXIT.FAILED, `the pipeline reports no environment ${environment}`);
  if (!e.running.ok)
    throw new CliError(
      EXIT.FAILED,
      `cannot read ${environment}'s ledger: [${e.running.error.code}] ${e.running.error.message}`,
    );
  const now = new Date(doc.generatedAt);

  if (environment === 'prod') {
    if (!e.pendingApprovals.ok)
      throw new CliError(
        EXIT.FAILED,
        `cannot read PROD's pending decisions: [${e.pendingApprovals.error.code}] ${e.pendingApprovals.error.message}`,
      );
    const pending = e.pendingApprovals.value.filter((a) => a.action === 'rollback' && !a.expired);
    if (pending.length) {
      if (c.json) c.out(JSON.stringify({ action: 'pending-rollback', items: pending }, null, 2));
      else
        c.out(
          `A PROD rollback is waiting for a decision (${pending[0].deployment}).\nThe signed one-click rollback link was posted to Slack to: ${pending.map((p) => p.approver).join(', ')}.\n\n${approvalsTable(pending, { now, tz: doc.displayTimeZone ?? 'UTC', term: c.term })}\n\nOpen the link, tick the checklist, type ROLLBACK and confirm: it restores the pre-deploy backup and starts the previous image.`,
        );
      return EXIT.OK;
    }
  }
  const running = e.running.value;
  const previous = running?.previousVersion;
  if (!running || !previous)
    throw new CliError(
      EXIT.FAILED,
      `${environment.toUpperCase()} has no previous version in its ledger to roll back to${running ? ` (running ${running.version})` : ''}`,
    );
  if (e.inProgress.ok && e.inProgress.value)
    c.err(
      `note: ${e.inProgress.value.id} is in progress on ${environment}: the rollback waits in the lane behind it`,
    );
  const reason = c.values.reason ?? `rollback from ${running.version} to ${previous}`;
  const { id, body } = await requestDeploy(c, environment, previous, { reason });
  if (!c.json || !c.values.wait) {
    if (c.json)
      c.out(
        JSON.stringify(
          {
            action: environment === 'prod' ? 'requested-prod-deploy' : 'redeploy',
            from: running.version,
            to: previous,
            ...body,
          },
          null,
          2,
        ),
      );
    else if (environment === 'uat')
      c.out(`UAT rollback: redeploying ${previous} (running ${running.version}) — ${id}`);
    else
      c.out(
        `PROD rollback requested as a PROD deploy of ${previous} (running ${running.version}) — ${id}\nIt needs approval like any PROD deploy: the approvers got signed links in Slack. It does not restore a database backup (docs/ROLLBACK_GUIDE.md).`,
      );
  }
  return c.values.wait ? followDeployment(c, id) : EXIT.OK;
}

/** Entry point of bin/odoo-pipeline.js. */
export function cli(): void {
  run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then(
    (code: ExitCode | number) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`odoo-pipeline: ${(err as Error)?.message ?? String(err)}\n`);
      process.exitCode = EXIT.FAILED;
    },
  );
}
