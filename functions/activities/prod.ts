/**
 * The side effects of a PROD deploy (`deployProd`), one activity per runbook step. Built by
 * `createProdActivities(ports)` so tests wire a real SSH server / Azurite / registry / Slack server (or
 * in-memory stand-ins) and production wires Azure (`prodPortsFromConfig`).
 *
 * The VM steps (preflight, pull, stop, migrate, start, health, rollback compensations, logs) are the UAT
 * deploy's own code: `createDeployActivities()` of ./deploy.ts wired to the PROD VM. They are registered
 * here under `prod*` names because the UAT registrations are wired to the UAT VM only.
 *
 * New here: prepare (settings + the UAT record of the version + what PROD runs), the approval request
 * (the tokens are signed HERE, never in the orchestration, so the key never enters its history), the
 * promotion (retag by manifest copy), the full backup (+ running image reference, + optional ARM
 * data-disk snapshots), the stability probe, decision records, PROD image retention, PROD Slack messages.
 *
 * Failure contract (as ./deploy.ts): throw only transient failures (retried by the orchestrator), return
 * deterministic ones as `{ failed: { code, message } }`.
 */
import * as df from 'durable-functions';
import { Readable } from 'node:stream';
import type { ContainerClient } from '@azure/storage-blob';
import { loadConfig, type Config } from '../../shared/config';
import { eligibleUatRuns, ensureContainer, ledgerContainer, writeJson } from '../../shared/adapters/ledger';
import { parseBackupId } from '../../shared/adapters/backup-store';
import { keepLastN } from '../../shared/adapters/registry';
import { SshClient } from '../../shared/adapters/ssh';
import { createVmControl } from '../../shared/adapters/vm';
import {
  createSlack,
  type PostedMessage,
  type SlackBlock,
  type SlackMessage,
  type SlackPort,
} from '../../shared/adapters/slack';
import {
  approvalButtons,
  SLACK_MAX_BLOCKS,
  SLACK_MAX_BUTTON_VALUE,
  type ButtonSubject,
} from '../slack-buttons';
import { githubOptionsFromConfig } from '../../shared/adapters/github';
import {
  createGitHubDeployments,
  type GitHubDeploymentsPort,
} from '../../shared/adapters/github-deployments';
import {
  approvalLink,
  signApprovalToken,
  signingKeys,
  type ApprovalAction,
  type SigningKey,
} from '../../shared/domain/approval-token';
import { PipelineError, errorCode, isRetryable, messageOf } from '../../shared/domain/errors';
import { approversOf, type Approver } from '../../shared/domain/identity';
import {
  registryOf,
  repositoryOf,
  tagOf,
  type DeploySettings,
  type ReleaseRef,
} from '../../shared/domain/deploy-plan';
import { createLogger, type Logger } from '../../shared/log';
import type { VmJob } from '../../shared/domain/vm-job';
import {
  createDeployActivities,
  deployPortsFromConfig,
  deploySettingsFromConfig,
  parseOpsJson,
  type ActivityFailure,
  type DeployActivities,
  type DeployPorts,
  type Failable,
  type NotifyEvent,
  type RemoteShell,
} from './deploy';

// ------------------------------------------------------------------------------------ shapes --

/** PROD-only settings (read here, handed to the orchestrator by `prodPrepare`). */
export interface ProdOptions {
  /** APPROVERS: identities (id, display name, Slack user id, Entra ID) */
  approvers: Approver[];
  approvalsRequired: number;
  approvalTimeoutHours: number;
  /** reminder this long before the approval expires (0: none) */
  approvalReminderMinutes: number;
  fourEyes: boolean;
  autoRollback: boolean;
  healthStableSeconds: number;
  diskSnapshot: boolean;
  /** ARM id of the PROD VM (disk snapshots) */
  vmResourceId?: string;
  /** PUBLIC_BASE_URL: approval links and status links */
  publicBaseUrl: string;
  /** https://github.com/<owner>/<repo> (compare links); undefined when unknown */
  repositoryUrl?: string;
  /** SLACK_SIGNING_SECRET is set: the approval, reminder and rollback messages carry Slack buttons next to the links */
  slackButtons?: boolean;
}

export interface ApprovalPolicy {
  /** approver ids (canonical: what tokens name and decisions are compared on) */
  approvers: string[];
  /** approver id → display name */
  names: Record<string, string>;
  /** the approver ids that are the requester (four-eyes: none of them gets a link or may approve) */
  requesterApprovers: string[];
  required: number;
  timeoutMs: number;
  reminderMs: number;
  fourEyes: boolean;
}

export interface CommitRange {
  /** the commit PROD runs now (undefined: first PROD deploy) */
  from?: string;
  to: string;
  fromVersion?: string;
  compareUrl?: string;
  /** commits between `from` and `to` (GitHub's compare), when known */
  count?: number;
}

export interface UatResult {
  version: string;
  sha: string;
  imageRef?: string;
  imageDigest?: string;
  deployedAt?: string;
  instanceId?: string;
  coverage?: number;
}

export interface ProdPrepareOut {
  settings: DeploySettings;
  policy: ApprovalPolicy;
  autoRollback: boolean;
  healthStableSeconds: number;
  diskSnapshot: boolean;
  /** what PROD runs now (ledger) */
  running?: ReleaseRef;
  /** the UAT record of this version (it succeeded there) */
  uat: UatResult;
  /** `<registry>/<repo>:prod-vX.Y.Z` */
  prodImageRef: string;
  commitRange: CommitRange;
  statusUrl: string;
}

export interface LinkRequest {
  approver: string;
  nonce: string;
  action: ApprovalAction;
  /** epoch ms */
  exp: number;
}

/** What a link approves when it is not a PROD VM deploy: moving an Odoo.sh production branch. */
export interface ApprovalTarget {
  kind: 'odoosh';
  branch: string;
  /** owner/name of the repository Odoo.sh tracks */
  repository: string;
  stage: string;
}

export interface ApprovalSummary {
  environment: string;
  /** absent: a PROD deploy; set: what else is being approved (the wording follows it) */
  target?: ApprovalTarget;
  version: string;
  sha: string;
  requestedBy: string;
  reason: string;
  commitRange?: CommitRange;
  uat?: UatResult;
  required: number;
  fourEyes: boolean;
  expiresAt: string;
  statusUrl?: string;
  /** rollback messages: why the deploy failed, and the state PROD is left in */
  failure?: string;
  failedStep?: string;
  prodState?: string;
  previousVersion?: string;
  backupId?: string;
}

export type ProdMessageKind = 'approval' | 'reminder' | 'rollback';

/** What `prodRequestLinks` did: links sent privately, and where the channel's request message is. */
export interface RequestLinksOut {
  posted: number;
  channel?: PostedMessage;
  /** the approvers' display names, as the channel message lists them */
  recipients?: string[];
}

/** `prodProgress`: the channel message again, with who approved and who is pending. */
export interface ProgressInput {
  kind: ProdMessageKind;
  channel?: PostedMessage;
  summary: ApprovalSummary;
  recipients: string[];
  approved: string[];
  pending: string[];
  outcome?: string;
}
/** The approval announcements' input: `subject`/`where` name what is approved when it is not a PROD deploy. */
export interface AnnounceInput {
  kind: AnnounceKind;
  version: string;
  environment: string;
  requestedBy?: string;
  detail?: string;
  /** e.g. "Odoo.sh production move" (default: PROD deploy) */
  subject?: string;
  /** e.g. "production (acme/odoo-mta)" (default: the environment in capitals) */
  where?: string;
}

export type AnnounceKind =
  | 'approved'
  | 'rejected'
  | 'expired'
  | 'refused'
  | 'rollback-expired'
  | 'rollback-started'
  | 'not-started';

export interface ProdBackupOut {
  backupId: string;
  bytes: number;
  parts: Record<string, { size: number; sha256: string }>;
  runningImage?: string;
  runningDigest?: string;
  snapshots?: string[];
}

export interface DecisionLogEntry {
  instanceId: string;
  nonce: string;
  approver: string;
  action: string;
  verdict: 'accepted' | 'refused';
  why?: string;
  comment?: string;
  ip?: string;
  userAgent?: string;
  decidedAt?: string;
  receivedAt: string;
}

// ------------------------------------------------------------------------------------- ports --

export interface ProdPorts {
  /** the deploy ports wired to the PROD VM (ssh.connect('prod') reaches it) */
  deploy: DeployPorts;
  options: ProdOptions;
  /** signing keys, current first (from APPROVAL_SIGNING_KEY[_PREVIOUS]) */
  keys(): SigningKey[];
  slack: SlackPort;
  /** GitHub Deployments (failure statuses of PROD deploys); optional */
  github?: GitHubDeploymentsPort;
  /** where decisions are recorded (LEDGER_CONTAINER: `approvals/decisions/<instance>/...`) */
  decisions: ContainerClient;
  /** the VM control for data-disk snapshots (PROD_DISK_SNAPSHOT) */
  snapshot?(resourceId: string, name: string): Promise<string[]>;
  log: Logger;
}

// ------------------------------------------------------------------------------- helpers --

async function guarded<T>(log: Logger, what: string, fn: () => Promise<T>): Promise<Failable<T>> {
  try {
    return await fn();
  } catch (err) {
    const code = errorCode(err) ?? 'DEPLOY.FAILED';
    if (isRetryable(err)) {
      log.warn(`${what}: transient failure, will be retried`, { code, error: messageOf(err) });
      throw err instanceof Error ? err : new Error(String(err));
    }
    log.error(`${what} failed`, { code, error: messageOf(err) });
    const m = messageOf(err);
    return { failed: { code, message: m.startsWith('[') ? m : `[${code}] ${m}` } satisfies ActivityFailure };
  }
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const short = (sha?: string) => (sha ? sha.slice(0, 7) : '–');
const when = (iso: string) =>
  iso
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC')
    .replace(/Z$/, ' UTC');

/** Image reference of the same repository (and registry host) with another tag. */
export function withTag(imageRef: string, tag: string): string {
  const at = imageRef.indexOf('@');
  let ref = at >= 0 ? imageRef.slice(0, at) : imageRef;
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > slash) ref = ref.slice(0, colon);
  return `${ref}:${tag}`;
}

function summaryFields(s: ApprovalSummary): SlackBlock {
  const range = s.commitRange?.from
    ? `${s.commitRange.compareUrl ? `<${s.commitRange.compareUrl}|${short(s.commitRange.from)}…${short(s.commitRange.to)}>` : `\`${short(s.commitRange.from)}…${short(s.commitRange.to)}\``}${s.commitRange.fromVersion ? ` (since ${esc(s.commitRange.fromVersion)})` : ''}${typeof s.commitRange.count === 'number' ? `, ${s.commitRange.count} commit${s.commitRange.count === 1 ? '' : 's'}` : ''}`
    : `\`${short(s.sha)}\` (${s.target ? 'new branch' : 'first PROD deploy'})`;
  const uat = s.uat
    ? `succeeded${s.uat.deployedAt ? ` ${when(s.uat.deployedAt)}` : ''}${s.uat.imageDigest ? `\n\`${s.uat.imageDigest.slice(0, 19)}…\`` : ''}`
    : 'unknown';
  return {
    type: 'section',
    fields: [
      { type: 'mrkdwn', text: `*Version*\n${esc(s.version)}` },
      { type: 'mrkdwn', text: `*Commits*\n${range}` },
      s.target
        ? {
            type: 'mrkdwn',
            text: `*Odoo.sh branch*\n\`${esc(s.target.branch)}\` (${esc(s.target.stage)}) of ${esc(s.target.repository)}`,
          }
        : { type: 'mrkdwn', text: `*UAT*\n${uat}` },
      { type: 'mrkdwn', text: `*Requested by*\n${esc(s.requestedBy)}` },
    ],
  };
}

/** One approver's signed link; `token` (the one in the URL) is the value of their Slack buttons. */
export interface SignedLink {
  approver: string;
  url: string;
  token?: string;
}

export interface LinksMessageOptions {
  /** SLACK_SIGNING_SECRET is set: one Block Kit `actions` block per approver, next to the links */
  buttons?: boolean;
}

/**
 * The Block Kit message with one signed link per approver (approval, reminder or rollback), and with
 * `o.buttons` one row of buttons per approver carrying the same token (see `buttonBlocks`).
 */
export function prodLinksMessage(
  kind: ProdMessageKind,
  s: ApprovalSummary,
  links: SignedLink[],
  o: LinksMessageOptions = {},
): SlackMessage {
  if (s.target && kind !== 'rollback') return targetLinksMessage(kind, s, s.target, links, o);
  const env = s.environment.toUpperCase();
  const head =
    kind === 'approval'
      ? `:lock: PROD approval needed: ${s.version} → ${env}`
      : kind === 'reminder'
        ? `:alarm_clock: Reminder: ${s.version} → ${env} still needs approval`
        : `:rotating_light: PROD deploy of ${s.version} FAILED — rollback available`;
  const text =
    kind === 'rollback'
      ? `PROD deploy of ${s.version} failed${s.failedStep ? ` at ${s.failedStep}` : ''}: ${s.failure ?? 'unknown'}. PROD is ${s.prodState ?? 'in an unknown state'}. Roll back: one link per approver below.`
      : `${kind === 'reminder' ? 'Reminder: ' : ''}${s.requestedBy} asks to deploy ${s.version} to ${env}: ${s.reason}. Links expire ${when(s.expiresAt)}.`;
  const blocks: SlackBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: head.replace(/^:[a-z_]+: /, '').slice(0, 150) } },
  ];
  if (kind === 'rollback') {
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: `${head}\n*Step* \`${esc(s.failedStep ?? '?')}\` · *PROD is* ${esc(s.prodState ?? 'unknown')}\n\`\`\`${esc(s.failure ?? '').slice(0, 2000)}\`\`\`\nThe rollback starts ${esc(s.previousVersion ?? 'the previous image')} again and restores backup \`${esc(s.backupId ?? '?')}\` (database + filestore taken just before this deploy).`,
      },
    });
  } else {
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `${head}\n*Reason:* ${esc(s.reason)}` } });
  }
  blocks.push(summaryFields(s));
  const rule =
    kind === 'rollback'
      ? 'Any one approver may start the rollback. Opening a link only shows a confirmation page; nothing happens until you confirm on it.'
      : `${s.required} approval${s.required > 1 ? 's' : ''} from distinct approvers needed${s.fourEyes ? `; ${esc(s.requestedBy)} cannot approve their own request` : ''}. Opening a link only shows the checklist; nothing is decided until you confirm on the page.`;
  blocks.push({
    type: 'context',
    elements: [
      { type: 'mrkdwn', text: `${rule} Links are personal, single-use and expire ${when(s.expiresAt)}.` },
    ],
  });
  blocks.push(
    ...linksSections(
      kind,
      links,
      kind === 'rollback' ? 'Review the ROLLBACK' : 'Review and approve or reject',
    ),
  );
  return finish(kind, s, links, o, { text, blocks });
}

/**
 * The channel's side of an approval request (issue #15): what is asked, by whom, the rules, and to whom
 * the links went — privately, each approver their own. Never a link or a token: everyone in the channel
 * reads it. `progress` (chat.update) adds who approved and who is still pending.
 */
export function prodRequestMessage(
  kind: ProdMessageKind,
  s: ApprovalSummary,
  recipients: string[],
  progress?: { approved: string[]; pending: string[]; outcome?: string },
): SlackMessage {
  const env = s.environment.toUpperCase();
  const what = s.target
    ? `Odoo.sh ${s.target.stage} move of ${s.version} to branch ${s.target.branch} (${s.target.repository})`
    : kind === 'rollback'
      ? `rollback of the failed PROD deploy of ${s.version}`
      : `PROD deploy of ${s.version} → ${env}`;
  const head =
    kind === 'rollback'
      ? `:rotating_light: PROD deploy of ${s.version} FAILED — rollback available`
      : `${kind === 'reminder' ? ':alarm_clock: Reminder: ' : ':lock: Approval needed: '}${what}`;
  const text =
    kind === 'rollback'
      ? `PROD deploy of ${s.version} failed${s.failedStep ? ` at ${s.failedStep}` : ''}: ${s.failure ?? 'unknown'}. The approvers received a rollback link privately.`
      : `${s.requestedBy} asks for the ${what}: ${s.reason}. The approvers received their links privately; they expire ${when(s.expiresAt)}.`;
  const blocks: SlackBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: head.replace(/^:[a-z_]+: /, '').slice(0, 150) } },
    {
      type: 'section',
      text: {
        type: 'mrkdwn',
        text:
          kind === 'rollback'
            ? `${head}\n*Step* \`${esc(s.failedStep ?? '?')}\` · *PROD is* ${esc(s.prodState ?? 'unknown')}\n\`\`\`${esc(s.failure ?? '').slice(0, 2000)}\`\`\``
            : `${head}\n*Reason:* ${esc(s.reason)}`,
      },
    },
    summaryFields(s),
    {
      type: 'section',
      block_id: `prod-${kind}-request`,
      text: {
        type: 'mrkdwn',
        text: `${kind === 'rollback' ? 'Any one of them may start the rollback' : `${s.required} approval${s.required > 1 ? 's' : ''} from distinct approvers needed${s.fourEyes ? `; ${esc(s.requestedBy)} cannot approve their own request` : ''}`}. Each approver received their own single-use link privately (direct message from this app): ${recipients.map((r) => `*${esc(r)}*`).join(', ') || '_nobody_'}.`,
      },
    },
  ];
  if (progress)
    blocks.push({
      type: 'section',
      block_id: `prod-${kind}-progress`,
      text: {
        type: 'mrkdwn',
        text: `*Approved by:* ${progress.approved.map(esc).join(', ') || '_nobody yet_'}\n*Pending:* ${progress.pending.map(esc).join(', ') || '_nobody_'}${progress.outcome ? `\n*Outcome:* ${esc(progress.outcome)}` : ''}`,
      },
    });
  if (s.statusUrl)
    blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `<${s.statusUrl}|deploy status>` }] });
  return { text, blocks };
}

/** Slack refuses a section whose text is longer than this (`invalid_blocks`: nothing is posted). */
const SLACK_SECTION_TEXT_MAX = 3000;

/**
 * The links, one line per approver. A link line is ~350 characters, so beyond ~8 approvers they are
 * spread over several sections (Slack's 3000-character limit per section); the first keeps the
 * block_id `prod-<kind>-links`, the next ones `prod-<kind>-links-2`, `-3`, …
 */
function linksSections(kind: ProdMessageKind, links: SignedLink[], label: string): SlackBlock[] {
  const lines = links.map((l) => `• *${esc(l.approver)}*: <${l.url}|${label}>`);
  if (!lines.length)
    return [
      {
        type: 'section',
        block_id: `prod-${kind}-links`,
        text: { type: 'mrkdwn', text: '_no approver can decide (check APPROVERS)_' },
      },
    ];
  const chunks: string[] = [];
  for (const line of lines) {
    const last = chunks.length - 1;
    if (last >= 0 && chunks[last].length + 1 + line.length <= SLACK_SECTION_TEXT_MAX)
      chunks[last] += `\n${line}`;
    else chunks.push(line);
  }
  return chunks.map((text, i) => ({
    type: 'section',
    block_id: i === 0 ? `prod-${kind}-links` : `prod-${kind}-links-${i + 1}`,
    text: { type: 'mrkdwn', text },
  }));
}

/**
 * The Slack buttons of a links message: one `actions` block per approver (`approvalButtons`, value = the
 * token of that approver's link), block ids `prod-<kind>-buttons-<n>`. All or none: when one block per
 * approver would take the message past Slack's 50 blocks, or a token does not fit a button value, the
 * message carries the links only and a line saying why. No buttons for an Odoo.sh rollback (there is none).
 * `used`: the blocks the message has besides these.
 */
export function buttonBlocks(
  kind: ProdMessageKind,
  s: ApprovalSummary,
  links: SignedLink[],
  used: number,
): SlackBlock[] {
  if (kind === 'rollback' && s.target) return [];
  const signed = links.filter(
    (l): l is Required<SignedLink> => typeof l.token === 'string' && l.token.length > 0,
  );
  if (!signed.length) return [];
  const note = (why: string): SlackBlock => ({
    type: 'context',
    block_id: `prod-${kind}-buttons-none`,
    elements: [{ type: 'mrkdwn', text: `No Slack buttons in this message: ${why}. Use the links above.` }],
  });
  if (used + signed.length > SLACK_MAX_BLOCKS)
    return [
      note(
        `${signed.length} approvers need more than the ${SLACK_MAX_BLOCKS} blocks Slack allows in one message`,
      ),
    ];
  if (signed.some((l) => l.token.length > SLACK_MAX_BUTTON_VALUE))
    return [
      note(`an approval token is longer than the ${SLACK_MAX_BUTTON_VALUE} characters a button can carry`),
    ];
  const subject: ButtonSubject = {
    version: s.version,
    environment: s.environment.toUpperCase(),
    odoosh: s.target ? { stage: s.target.stage, branch: s.target.branch } : undefined,
    previousVersion: s.previousVersion,
  };
  return signed.map((l, i) =>
    approvalButtons({
      ...subject,
      approver: l.approver,
      action: kind === 'rollback' ? 'rollback' : 'approval',
      token: l.token,
      blockId: `prod-${kind}-buttons-${i + 1}`,
    }),
  );
}

/** The message's tail: the buttons (when wanted) after the links, then the status link. */
function finish(
  kind: ProdMessageKind,
  s: ApprovalSummary,
  links: SignedLink[],
  o: LinksMessageOptions,
  m: { text: string; blocks: SlackBlock[] },
): SlackMessage {
  const status: SlackBlock[] = s.statusUrl
    ? [{ type: 'context', elements: [{ type: 'mrkdwn', text: `<${s.statusUrl}|deploy status>` }] }]
    : [];
  const buttons = o.buttons ? buttonBlocks(kind, s, links, m.blocks.length + status.length) : [];
  return { text: m.text, blocks: [...m.blocks, ...buttons, ...status] };
}

/** The approval (or reminder) message for moving an Odoo.sh production branch: says what moves where. */
function targetLinksMessage(
  kind: 'approval' | 'reminder',
  s: ApprovalSummary,
  t: ApprovalTarget,
  links: SignedLink[],
  o: LinksMessageOptions,
): SlackMessage {
  const what = `Odoo.sh ${t.stage} move of ${s.version} to branch ${t.branch} (${t.repository})`;
  const head =
    kind === 'approval'
      ? `:lock: Approval needed: ${what}`
      : `:alarm_clock: Reminder: ${what} still needs approval`;
  const text = `${kind === 'reminder' ? 'Reminder: ' : ''}${s.requestedBy} asks to move the Odoo.sh ${t.stage} branch ${t.branch} of ${t.repository} to ${s.version} (${short(s.sha)}): ${s.reason}. Links expire ${when(s.expiresAt)}.`;
  const blocks: SlackBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: head.replace(/^:[a-z_]+: /, '').slice(0, 150) } },
    {
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: `${esc(head)}\n*Reason:* ${esc(s.reason)}\nOdoo.sh rebuilds production from the branch as soon as it moves.`,
      },
    },
    summaryFields(s),
    {
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          text: `${s.required} approval${s.required > 1 ? 's' : ''} from distinct approvers needed${s.fourEyes ? `; ${esc(s.requestedBy)} cannot approve their own request` : ''}. Opening a link only shows the checklist; nothing is decided until you confirm on the page. Links are personal, single-use and expire ${when(s.expiresAt)}.`,
        },
      ],
    },
    ...linksSections(kind, links, 'Review and approve or reject'),
  ];
  return finish(kind, s, links, o, { text, blocks });
}

const ANNOUNCE: Record<AnnounceKind, string> = {
  approved: ':white_check_mark: PROD deploy approved',
  rejected: ':no_entry: PROD deploy rejected',
  expired: ':hourglass: PROD approval expired (nothing deployed)',
  refused: ':warning: A PROD decision was refused',
  'rollback-expired': ':rotating_light: <!channel> PROD rollback decision expired — PROD needs attention',
  'rollback-started': ':rewind: PROD rollback started',
  'not-started': ':x: PROD deploy could not start',
};

/** The same announcements for another subject than a PROD deploy (e.g. "Odoo.sh production move"). */
const ANNOUNCE_SUBJECT: Record<AnnounceKind, (subject: string) => string> = {
  approved: (x) => `:white_check_mark: ${x} approved`,
  rejected: (x) => `:no_entry: ${x} rejected`,
  expired: (x) => `:hourglass: ${x}: approval expired (nothing moved)`,
  refused: (x) => `:warning: A decision on a ${x} was refused`,
  'rollback-expired': (x) => `:rotating_light: <!channel> ${x}: rollback decision expired — needs attention`,
  'rollback-started': (x) => `:rewind: ${x}: rollback started`,
  'not-started': (x) => `:x: ${x} could not start`,
};

export function prodAnnouncement(kind: AnnounceKind, s: Omit<AnnounceInput, 'kind'>): SlackMessage {
  const head = `${s.subject ? ANNOUNCE_SUBJECT[kind](s.subject) : ANNOUNCE[kind]}: ${s.version} → ${s.where ?? s.environment.toUpperCase()}`;
  const text = `${head.replace(/^:[a-z_]+: /, '').replace('<!channel> ', '')}${s.detail ? ` — ${s.detail}` : ''}`;
  return {
    text,
    blocks: [
      {
        type: 'section',
        text: { type: 'mrkdwn', text: `${head}${s.detail ? `\n${esc(s.detail).slice(0, 2500)}` : ''}` },
      },
    ],
  };
}

/** The approval settings of ProdOptions (APPROVERS, APPROVALS_REQUIRED, APPROVAL_TIMEOUT_HOURS, …). */
export type ApprovalOptions = Pick<
  ProdOptions,
  'approvers' | 'approvalsRequired' | 'approvalTimeoutHours' | 'approvalReminderMinutes' | 'fourEyes'
>;

/**
 * PROD's approval policy from its settings — the ONE place it is built, for every orchestration that
 * asks for PROD approvals (deployProd's `prodPrepare`, deployOdooSh's production branches). Throws a
 * coded error when links could not be signed or delivered, or no one may approve.
 */
export function approvalPolicy(
  o: ApprovalOptions,
  can: { hasKey: boolean; slackEnabled: boolean },
  what = 'a PROD deploy',
  requester?: { id: string; emails?: string[] },
): ApprovalPolicy {
  if (!o.approvers.length)
    throw new PipelineError('APPROVAL.NO_APPROVERS', `APPROVERS is empty: no one may approve ${what}`);
  // links are delivered privately, to the approver's Slack user id: an approver without one gets none
  const approvers = o.approvers.filter((a) => a.slack).map((a) => a.id);
  if (!approvers.length)
    throw new PipelineError(
      'APPROVAL.NO_PRIVATE_CHANNEL',
      `no approver has a Slack user id (APPROVERS slack=U…): no one can receive a link to approve ${what}`,
    );
  if (!can.hasKey)
    throw new PipelineError(
      'APPROVAL.NO_KEY',
      'APPROVAL_SIGNING_KEY is not set: approval links cannot be signed',
    );
  if (!can.slackEnabled)
    throw new PipelineError(
      'SLACK.NOT_CONFIGURED',
      'SLACK_BOT_TOKEN is not set: each approver receives their approval link privately (chat.postMessage to their Slack user id), which needs the Slack Web API',
    );
  return {
    approvers,
    names: Object.fromEntries(o.approvers.map((a) => [a.id, a.name])),
    requesterApprovers: requester ? approversOf(o.approvers, requester.id, requester.emails) : [],
    required: o.approvalsRequired,
    timeoutMs: Math.round(o.approvalTimeoutHours * 3600_000),
    reminderMs: Math.round(o.approvalReminderMinutes * 60_000),
    fourEyes: o.fourEyes,
  };
}

// ------------------------------------------------------------------------------- activities --

export interface ProdActivities {
  deploy: DeployActivities;
  prepare(i: {
    environment: string;
    version: string;
    sha: string;
    imageRef: string;
    instanceId: string;
    requestedBy?: string;
    requesterEmails?: string[];
  }): Promise<Failable<ProdPrepareOut>>;
  /** sign one token per link and post the Slack message (the tokens are never returned) */
  requestLinks(i: {
    kind: ProdMessageKind;
    instanceId: string;
    links: LinkRequest[];
    summary: ApprovalSummary;
  }): Promise<Failable<RequestLinksOut>>;
  /** chat.update of the channel's request message: who approved, who is pending (never fails) */
  progress(i: ProgressInput): Promise<{ updated: boolean }>;
  announce(i: AnnounceInput): Promise<{ posted: boolean }>;
  recordDecision(e: DecisionLogEntry): Promise<{ recorded: boolean }>;
  promote(i: {
    uatImageRef: string;
    prodImageRef: string;
    expectDigest?: string;
  }): Promise<Failable<{ digest: string; prodImageRef: string }>>;
  /**
   * Start the full PROD backup as a VM job uploading straight to Blob (deploy's `backupStart`), after
   * writing the running image reference (`image.json`) and taking the optional disk snapshots; both are
   * recorded in the manifest the job writes. A retried or replayed start finds its job first.
   */
  backupStart(i: {
    environment: string;
    version: string;
    sha: string;
    instanceId: string;
    running?: ReleaseRef;
    prodImageRef: string;
    snapshot: boolean;
    jobId: string;
    at: string;
  }): Promise<Failable<VmJob>>;
  /** The finished backup re-read and hashed against its manifest, with what the manifest records. */
  backupVerify(i: { backupId: string }): Promise<Failable<ProdBackupOut>>;
  /** one health probe (no waiting): `odoo-ops health --wait 0` + status + key URLs */
  probe(i: {
    settings: DeploySettings;
    imageRef: string;
  }): Promise<Failable<{ healthy: boolean; failures: string[] }>>;
  retention(i: {
    settings: DeploySettings;
    running: string;
    previous?: string;
  }): Promise<{ kept: string[]; deleted: string[] }>;
  /** GitHub deployment status of a failed PROD deploy (Slack gets the rollback message instead) */
  githubStatus(i: {
    githubDeploymentId?: number;
    state: 'failure' | 'error' | 'success';
    description: string;
    logUrl?: string;
  }): Promise<{ ok: boolean }>;
}

export function createProdActivities(p: ProdPorts): ProdActivities {
  const deploy = createDeployActivities(p.deploy);
  const o = p.options;

  async function withShell<T>(fn: (sh: RemoteShell) => Promise<T>): Promise<T> {
    const sh = await p.deploy.ssh.connect('prod');
    try {
      return await fn(sh);
    } finally {
      await sh.close().catch(() => undefined);
    }
  }

  async function backupStartOnce(i: Parameters<ProdActivities['backupStart']>[0]): Promise<Failable<VmJob>> {
    const backups = p.deploy.backups;
    const ops = p.deploy.opsCommand ?? 'odoo-ops';
    // a retried or replayed start: the job exists — report it (no second image.json, snapshot or SAS)
    const known = await deploy.jobStatus({ environment: i.environment, jobId: i.jobId });
    if (!('failed' in known)) return { ...known, started: false };
    if (known.failed.code !== 'OPS.JOB_UNKNOWN') return known;
    // what runs now: the image the VM records (odoo-ops current), and its digest from the ledger
    const current = await withShell(async (sh) => {
      const r = await sh.run(`${ops} --json current`, { timeoutMs: 60_000 });
      if (r.code !== 0)
        throw new PipelineError(
          'BACKUP.FAILED',
          `odoo-ops current failed (exit ${r.code}): ${r.stderrTail.trim().split('\n').slice(-2).join(' | ')}`,
        );
      return parseOpsJson(r.stdout ?? '') ?? {};
    });
    const runningImage =
      typeof current.image === 'string' && current.image ? current.image : i.running?.imageRef;
    const runningDigest = i.running?.imageDigest;
    const version =
      i.running?.version && /^[0-9A-Za-z.+_-]+$/.test(i.running.version) ? i.running.version : i.version;
    let snapshots: string[] | undefined;
    if (i.snapshot) {
      if (!o.vmResourceId || !p.snapshot)
        throw new PipelineError(
          'CONFIG.SNAPSHOT',
          'PROD_DISK_SNAPSHOT is on but PROD_VM_RESOURCE_ID is not set',
        );
      const name = `odoo-prod-${i.version.replace(/[^A-Za-z0-9.-]/g, '-')}-${Date.now().toString(36)}`;
      snapshots = await p.snapshot(o.vmResourceId, name);
      if (!snapshots.length)
        throw new PipelineError(
          'BACKUP.SNAPSHOT_EMPTY',
          `the PROD VM has no data disk to snapshot (${o.vmResourceId})`,
        );
    }
    // the running image reference is part of the backup: a rollback needs it even if the ledger is gone
    const image = Buffer.from(
      JSON.stringify(
        {
          environment: i.environment,
          runningImage,
          runningDigest,
          runningVersion: i.running?.version,
          runningSha: i.running?.sha,
          nextImage: i.prodImageRef,
          nextVersion: i.version,
        },
        null,
        2,
      ),
    );
    await backups.ensureContainer();
    const backupId = await backups.freeIdAt(i.environment, version, new Date(i.at));
    const writer = backups.begin(i.environment, { version }, parseBackupId(backupId).createdAt);
    // a free id: an attempt that died before its job started left its image.json under another one
    const imagePart = await writer.part('image.json', Readable.from([image]));
    return deploy.backupStart({
      backupId: writer.id,
      environment: i.environment,
      version,
      sha: i.running?.sha ?? i.sha,
      imageDigest: runningDigest,
      instanceId: i.instanceId,
      jobId: i.jobId,
      at: i.at,
      reason: 'pre-deploy-prod',
      meta: {
        gitSha: i.running?.sha,
        runningImage,
        nextVersion: i.version,
        nextImage: i.prodImageRef,
        ...(snapshots ? { snapshots } : {}),
      },
      extraParts: { 'image.json': { size: imagePart.size, sha256: imagePart.sha256 } },
    });
  }

  /** a deploy activity's value, its returned failure thrown again (guarded turns it back into a value) */
  function unwrap<T>(r: Failable<T>): T {
    if (r && typeof r === 'object' && 'failed' in r) {
      const f = (r as { failed: ActivityFailure }).failed;
      throw new PipelineError(f.code, f.message.replace(/^\[[A-Z0-9_.]+\] /, ''));
    }
    return r as T;
  }

  return {
    deploy,

    prepare: (i) =>
      guarded(p.log, 'prod prepare', async () => {
        const settings = p.deploy.settings('prod');
        const ledger = p.deploy.ledger;
        // a run deployed past the coverage gate never goes to PROD (the deployments API also checks the gate records)
        const uatRecord = (await eligibleUatRuns(ledger, undefined)).find(
          (r) => r.version === i.version && (!i.sha || r.sha === i.sha),
        );
        if (!uatRecord)
          throw new PipelineError(
            'PROD.NOT_ON_UAT',
            `version ${i.version} (${short(i.sha)}) has not succeeded on UAT: deploy it there first`,
          );
        const policy = approvalPolicy(
          o,
          { hasKey: p.keys().length > 0, slackEnabled: p.slack.webApi },
          'a PROD deploy',
          i.requestedBy ? { id: i.requestedBy, emails: i.requesterEmails } : undefined,
        );
        const cur = await ledger.current('prod');
        const running: ReleaseRef | undefined = cur
          ? {
              version: cur.version,
              sha: cur.sha,
              imageRef: cur.imageRef,
              imageDigest: cur.imageDigest,
              coverage: cur.coverage,
            }
          : undefined;
        const base = o.publicBaseUrl.replace(/\/+$/, '');
        // how many commits the approvers are asked to let through (the page says it); best effort
        let count: number | undefined;
        if (running?.sha && running.sha !== i.sha && p.github) {
          try {
            count = await p.github.commitCount(running.sha, i.sha);
          } catch (err) {
            p.log.warn('could not count the commits of the release (ignored)', { error: messageOf(err) });
          }
        } else if (running?.sha === i.sha) count = 0;
        return {
          settings,
          policy,
          autoRollback: o.autoRollback,
          healthStableSeconds: o.healthStableSeconds,
          diskSnapshot: o.diskSnapshot,
          running,
          uat: {
            version: uatRecord.version,
            sha: uatRecord.sha,
            imageRef: uatRecord.imageRef,
            imageDigest: uatRecord.imageDigest,
            deployedAt: uatRecord.deployedAt,
            instanceId: typeof uatRecord.instanceId === 'string' ? uatRecord.instanceId : undefined,
            coverage: uatRecord.coverage,
          },
          prodImageRef: withTag(i.imageRef, `prod-v${i.version}`),
          commitRange: {
            from: running?.sha,
            to: i.sha,
            fromVersion: running?.version,
            compareUrl:
              running?.sha && o.repositoryUrl
                ? `${o.repositoryUrl}/compare/${running.sha}...${i.sha}`
                : undefined,
            ...(count !== undefined ? { count } : {}),
          },
          statusUrl: `${base}/api/deployments/${encodeURIComponent(i.instanceId)}`,
        };
      }),

    requestLinks: (i) =>
      guarded(p.log, `prod ${i.kind} links`, async () => {
        const key = p.keys()[0];
        if (!key)
          throw new PipelineError(
            'APPROVAL.NO_KEY',
            'APPROVAL_SIGNING_KEY is not set: approval links cannot be signed',
          );
        const links: SignedLink[] = i.links.map((l) => {
          const token = signApprovalToken(
            { instanceId: i.instanceId, approver: l.approver, action: l.action, nonce: l.nonce, exp: l.exp },
            key,
          );
          return { approver: l.approver, url: approvalLink(o.publicBaseUrl, token), token };
        });
        // Private delivery: each approver's link (and buttons) go to them alone, as a message to their
        // Slack user id; the channel gets the request without any link. Slack down is transient
        // (retried: the same tokens again), a refusal is not.
        const to = links.map((l) => ({ link: l, approver: o.approvers.find((a) => a.id === l.approver) }));
        const unreachable = to.filter((t) => !t.approver?.slack).map((t) => t.link.approver);
        if (unreachable.length)
          throw new PipelineError(
            'APPROVAL.NO_PRIVATE_CHANNEL',
            `no Slack user id for ${unreachable.join(', ')} (APPROVERS): their links cannot be delivered privately`,
          );
        for (const t of to)
          await p.slack.postTo(
            t.approver!.slack!,
            prodLinksMessage(i.kind, i.summary, [{ ...t.link, approver: t.approver!.name }], {
              buttons: o.slackButtons === true,
            }),
          );
        const names = to.map((t) => t.approver!.name);
        const channel = await p.slack.post(prodRequestMessage(i.kind, i.summary, names));
        if (channel)
          p.log.info('approval request posted to the channel', { instanceId: i.instanceId, ts: channel.ts });
        p.log.info('prod links posted', {
          kind: i.kind,
          instanceId: i.instanceId,
          approvers: i.links.map((l) => l.approver),
          keyId: key.id,
        });
        return { posted: links.length, channel: channel || undefined, recipients: names };
      }),

    progress: async (i) => {
      if (!i.channel || !p.slack.webApi) return { updated: false };
      try {
        await p.slack.update(
          i.channel,
          prodRequestMessage(i.kind, i.summary, i.recipients, {
            approved: i.approved,
            pending: i.pending,
            outcome: i.outcome,
          }),
        );
        return { updated: true };
      } catch (err) {
        p.log.warn('could not update the approval request message (ignored)', { error: messageOf(err) });
        return { updated: false };
      }
    },

    announce: async (i) => ({ posted: await p.slack.postQuietly(prodAnnouncement(i.kind, i)) }),

    recordDecision: async (e) => {
      try {
        await ensureContainer(p.decisions)();
        const name = `approvals/decisions/${e.instanceId}/${e.receivedAt.replace(/[:.]/g, '-')}-${e.nonce.replace(/[^A-Za-z0-9-]/g, '_').slice(0, 64)}-${e.verdict}.json`;
        await writeJson(p.decisions, name, e, 'create');
        p.log.info('approval decision', {
          instanceId: e.instanceId,
          approver: e.approver,
          action: e.action,
          verdict: e.verdict,
          why: e.why,
        });
        return { recorded: true };
      } catch (err) {
        if (isRetryable(err)) throw err;
        p.log.error('could not record an approval decision', { error: messageOf(err) });
        return { recorded: false };
      }
    },

    promote: (i) =>
      guarded(p.log, 'promote', async () => {
        const reg = p.deploy.registry;
        if (!reg)
          throw new PipelineError(
            'CONFIG.REGISTRY_MISSING',
            'REGISTRY_URL is not set: cannot promote the image',
          );
        const repo = repositoryOf(i.uatImageRef);
        const from = tagOf(i.uatImageRef);
        const to = tagOf(i.prodImageRef);
        // the PROD VM pulls prodImageRef: it must name the very registry and repository the copy is made in
        if (
          !from ||
          !to ||
          repositoryOf(i.prodImageRef) !== repo ||
          registryOf(i.prodImageRef) !== registryOf(i.uatImageRef)
        )
          throw new PipelineError(
            'PROMOTE.BAD_REFERENCE',
            `cannot promote ${i.uatImageRef} to ${i.prodImageRef}`,
          );
        const src = await reg.resolve(repo, from);
        if (!src)
          throw new PipelineError(
            'REGISTRY.IMAGE_MISSING',
            `${repo}:${from} is not in the registry any more`,
          );
        if (i.expectDigest && src.digest !== i.expectDigest)
          throw new PipelineError(
            'PROMOTE.DIGEST_CHANGED',
            `${repo}:${from} now points at ${src.digest}, not the ${i.expectDigest} that UAT ran: refusing to promote`,
          );
        // manifest copy: no rebuild, no pull/push of layers; the digest cannot change
        const r = await reg.retag(repo, from, to);
        if (r.digest !== src.digest)
          throw new PipelineError(
            'PROMOTE.DIGEST_CHANGED',
            `retag produced ${r.digest}, expected ${src.digest}`,
          );
        p.log.info('promoted', { repo, from, to, digest: r.digest });
        return { digest: r.digest, prodImageRef: i.prodImageRef };
      }),

    backupStart: (i) => guarded(p.log, 'prod backup', async () => unwrap(await backupStartOnce(i))),

    backupVerify: (i) =>
      guarded(p.log, 'prod backup', async () => {
        const v = unwrap(await deploy.backupVerify(i));
        const m = v.manifest;
        const str = (x: unknown) => (typeof x === 'string' && x ? x : undefined);
        return {
          backupId: v.backupId,
          bytes: v.bytes,
          parts: v.parts,
          runningImage: str(m.runningImage),
          runningDigest: str(m.imageDigest),
          snapshots: Array.isArray(m.snapshots)
            ? m.snapshots.filter((x: unknown): x is string => typeof x === 'string')
            : undefined,
        };
      }),

    probe: async (i) =>
      deploy.health({ settings: { ...i.settings, healthTimeoutSeconds: 0 }, imageRef: i.imageRef }),

    retention: async (i) => {
      const reg = p.deploy.registry;
      if (!reg) return { kept: [], deleted: [] };
      const protect = [tagOf(i.running), i.previous ? tagOf(i.previous) : undefined].filter(
        (t): t is string => !!t,
      );
      const r = await keepLastN(reg, repositoryOf(i.running), 'prod-v', i.settings.keepCount, protect);
      p.log.info('prod image retention', { kept: r.kept, deleted: r.deleted });
      return r;
    },

    githubStatus: async (i) => {
      if (!p.github || i.githubDeploymentId === undefined) return { ok: false };
      try {
        await p.github.status(i.githubDeploymentId, {
          state: i.state,
          description: i.description,
          logUrl: i.logUrl,
        });
        return { ok: true };
      } catch (err) {
        p.log.warn('github deployment status failed (ignored)', { error: messageOf(err) });
        return { ok: false };
      }
    },
  };
}

// ------------------------------------------------------------------------- production wiring --

export function prodOptionsFromConfig(config: Config): ProdOptions {
  const api = config.GITHUB_API_URL ?? 'https://api.github.com';
  return {
    approvers: config.APPROVERS ?? [],
    approvalsRequired: config.APPROVALS_REQUIRED ?? 1,
    approvalTimeoutHours: config.APPROVAL_TIMEOUT_HOURS ?? 24,
    approvalReminderMinutes: config.APPROVAL_REMINDER_MINUTES ?? 60,
    fourEyes: config.FOUR_EYES ?? true,
    autoRollback: config.PROD_AUTO_ROLLBACK ?? false,
    healthStableSeconds: config.PROD_HEALTH_STABLE_SECONDS ?? 30,
    diskSnapshot: config.PROD_DISK_SNAPSHOT ?? false,
    vmResourceId: config.PROD_VM_RESOURCE_ID,
    publicBaseUrl: config.PUBLIC_BASE_URL,
    repositoryUrl: config.GITHUB_REPOSITORY
      ? `${api === 'https://api.github.com' ? 'https://github.com' : api.replace(/\/api\/v3\/?$/, '')}/${config.GITHUB_REPOSITORY}`
      : undefined,
    slackButtons: !!config.SLACK_SIGNING_SECRET,
  };
}

export function prodPortsFromConfig(config: Config, log: Logger = createLogger()): ProdPorts {
  const base = deployPortsFromConfig(config, log);
  const vmControl = config.PROD_VM_RESOURCE_ID
    ? createVmControl({ endpoint: config.ARM_ENDPOINT, log })
    : undefined;
  const gh = githubOptionsFromConfig(config);
  const deploy: DeployPorts = {
    ...base,
    settings: (env) => deploySettingsFromConfig(config, env),
    ssh: {
      async connect(env) {
        if (env !== 'prod')
          throw new PipelineError('DEPLOY.BAD_ENVIRONMENT', `deployProd targets prod only (got ${env})`);
        if (!config.PROD_SSH_HOST || !config.PROD_SSH_HOST_KEY || !config.SSH_PRIVATE_KEY)
          throw new PipelineError(
            'CONFIG.SSH_MISSING',
            'PROD_SSH_HOST, PROD_SSH_HOST_KEY and SSH_PRIVATE_KEY must be set',
          );
        return SshClient.connect(
          {
            host: config.PROD_SSH_HOST,
            port: config.PROD_SSH_PORT ?? 22,
            username: config.PROD_SSH_USER ?? 'odoo-ops',
            privateKey: config.SSH_PRIVATE_KEY,
            hostKeyFingerprint: config.PROD_SSH_HOST_KEY,
          },
          { connectTimeoutMs: (config.SSH_CONNECT_TIMEOUT_SECONDS ?? 20) * 1000, log },
        );
      },
    },
    vm:
      vmControl && config.PROD_VM_RESOURCE_ID
        ? {
            control: vmControl,
            resourceId: config.PROD_VM_RESOURCE_ID,
            autoStart: config.VM_AUTO_START ?? true,
          }
        : undefined,
  };
  return {
    deploy,
    options: prodOptionsFromConfig(config),
    keys: () => signingKeys(config),
    slack: createSlack({
      webhookUrl: config.SLACK_WEBHOOK_URL,
      botToken: config.SLACK_BOT_TOKEN,
      channel: config.SLACK_CHANNEL,
      apiUrl: config.SLACK_API_URL,
      log,
    }),
    github: gh && (gh.token || gh.app) ? createGitHubDeployments(gh) : undefined,
    decisions: ledgerContainer(config),
    snapshot: vmControl ? (id, name) => vmControl.snapshotDataDisks(id, name) : undefined,
    log,
  };
}

// ------------------------------------------------------------------------------ registration --

let current: ProdActivities | undefined;

/** Wire the activities to other ports (tests); production builds them from settings on first use. */
export function setProdPorts(ports: ProdPorts | undefined): void {
  current = ports ? createProdActivities(ports) : undefined;
}
function acts(): ProdActivities {
  current ??= createProdActivities(prodPortsFromConfig(loadConfig(process.env)));
  return current;
}
type In<K extends keyof ProdActivities> = ProdActivities[K] extends (i: infer I) => unknown ? I : never;
type DIn<K extends keyof DeployActivities> = Parameters<DeployActivities[K]>[0];

df.app.activity('prodPrepare', { handler: (i: In<'prepare'>) => acts().prepare(i) });
df.app.activity('prodRequestLinks', { handler: (i: In<'requestLinks'>) => acts().requestLinks(i) });
df.app.activity('prodProgress', { handler: (i: In<'progress'>) => acts().progress(i) });
df.app.activity('prodAnnounce', { handler: (i: In<'announce'>) => acts().announce(i) });
df.app.activity('prodRecordDecision', { handler: (i: In<'recordDecision'>) => acts().recordDecision(i) });
df.app.activity('prodPromote', { handler: (i: In<'promote'>) => acts().promote(i) });
df.app.activity('prodBackupStart', { handler: (i: In<'backupStart'>) => acts().backupStart(i) });
df.app.activity('prodBackupVerify', { handler: (i: In<'backupVerify'>) => acts().backupVerify(i) });
df.app.activity('prodProbe', { handler: (i: In<'probe'>) => acts().probe(i) });
df.app.activity('prodRetention', { handler: (i: In<'retention'>) => acts().retention(i) });
df.app.activity('prodGithubStatus', { handler: (i: In<'githubStatus'>) => acts().githubStatus(i) });
// the UAT deploy's VM steps, wired to the PROD VM
df.app.activity('prodPreflight', { handler: (i: DIn<'preflight'>) => acts().deploy.preflight(i) });
df.app.activity('prodModules', { handler: (i: DIn<'modules'>) => acts().deploy.modules(i) });
df.app.activity('prodPull', { handler: (i: DIn<'pull'>) => acts().deploy.pull(i) });
df.app.activity('prodConfirmBackup', {
  handler: (i: DIn<'confirmBackup'>) => acts().deploy.confirmBackup(i),
});
df.app.activity('prodStop', { handler: (i: DIn<'stop'>) => acts().deploy.stop(i) });
df.app.activity('prodMigrateStart', {
  handler: (i: DIn<'migrateStart'>) => acts().deploy.migrateStart(i),
});
df.app.activity('prodJobStatus', { handler: (i: DIn<'jobStatus'>) => acts().deploy.jobStatus(i) });
df.app.activity('prodRestoreStart', {
  handler: (i: DIn<'restoreStart'>) => acts().deploy.restoreStart(i),
});
df.app.activity('prodStart', { handler: (i: DIn<'start'>) => acts().deploy.start(i) });
df.app.activity('prodHealth', { handler: (i: DIn<'health'>) => acts().deploy.health(i) });
df.app.activity('prodRecord', { handler: (i: DIn<'record'>) => acts().deploy.record(i) });
df.app.activity('prodCompensate', { handler: (i: DIn<'compensate'>) => acts().deploy.compensate(i) });
df.app.activity('prodSaveLogs', { handler: (i: DIn<'saveLogs'>) => acts().deploy.saveLogs(i) });
df.app.activity('prodNotify', { handler: (e: NotifyEvent) => acts().deploy.notify(e) });
