/**
 * Side effects of the Odoo.sh target (`deployOdooSh`): check the release passed the gate, plan and
 * move the tracked branch through the GitHub API, read Odoo.sh's commit status, record and notify.
 * Built by a factory taking ports, so tests wire a local server that speaks GitHub's REST API.
 *
 * A production-stage branch gets PROD's approval rules: `approval` builds the policy from PROD's own
 * settings (`approvalPolicy()` of ./prod.ts, the same function `prodPrepare` calls) and the commit range
 * the approvers see; signing and posting the links, announcements and decision records are PROD's
 * activities (`prodRequestLinks`, `prodAnnounce`, `prodRecordDecision`), called by the approval gate.
 */
import * as df from 'durable-functions';
import { loadConfig, type Config } from '../../shared/config';
import { createDeployNotifier, type DeployNotifier } from '../../shared/adapters/deploy-notify';
import { createGitHub, githubOptionsFromConfig, type GitHubPort } from '../../shared/adapters/github';
import {
  createLedger,
  eligibleUatRuns,
  ledgerContainer,
  type GateRecords,
  type Ledger,
} from '../../shared/adapters/ledger';
import { createDeliveriesStore } from '../../shared/adapters/deliveries';
import { createOdooShRepo, type OdooShRepoPort } from '../../shared/adapters/odoosh';
import { PipelineError, errorCode, isRetryable, messageOf } from '../../shared/domain/errors';
import {
  planMove,
  readOdooShBuild,
  odooShEnvironment,
  type MovePlan,
  type OdooShBuild,
  type OdooShRequest,
  type OdooShResult,
  type OdooShStage,
} from '../../shared/domain/odoosh';
import { createLogger, type Logger } from '../../shared/log';
import { signingKeys, type SigningKey } from '../../shared/domain/approval-token';
import type { ActivityFailure, Failable } from './deploy';
import {
  approvalPolicy,
  prodOptionsFromConfig,
  type ApprovalOptions,
  type ApprovalPolicy,
  type CommitRange,
} from './prod';

export interface OdooShPorts {
  /** the repository Odoo.sh tracks */
  repo: OdooShRepoPort;
  /** the application repository (where the gate posted its status); often the same repository */
  github?: GitHubPort;
  gateContext: string;
  ledger: Ledger;
  /** the intake's gate records (a UAT run of a commit the gate blocked is not eligible) */
  gates?: GateRecords;
  notify?: DeployNotifier;
  /** PROD's approval settings, for production-stage branches */
  approval?: OdooShApprovalPorts;
  log: Logger;
}

export interface OdooShApprovalPorts {
  options: ApprovalOptions;
  /** PUBLIC_BASE_URL (the status link in the message) */
  publicBaseUrl: string;
  keys(): SigningKey[];
  /** SLACK_WEBHOOK_URL or SLACK_BOT_TOKEN is set (the links can be delivered) */
  slackEnabled: boolean;
  /** https://github.com/<ODOOSH_REPOSITORY> (compare links); undefined when unknown */
  repositoryUrl?: string;
}

export interface OdooShApprovalOut {
  policy: ApprovalPolicy;
  /** previous branch head → the release commit */
  commitRange: CommitRange;
  statusUrl: string;
}

export interface OdooShPreflightOut {
  ok: boolean;
  code?: string;
  reason: string;
  previousSha?: string;
  plan?: MovePlan;
  createBranch?: boolean;
  gate: 'uat-ledger' | 'none';
}

export interface OdooShActivities {
  preflight(r: OdooShRequest): Promise<OdooShPreflightOut>;
  move(i: { branch: string; sha: string; force: boolean; create: boolean }): Promise<void>;
  build(i: { sha: string; stage: OdooShStage }): Promise<OdooShBuild>;
  /** production branches: PROD's approval policy and what the approvers see */
  approval(i: {
    request: OdooShRequest;
    instanceId: string;
    previousSha?: string;
  }): Promise<Failable<OdooShApprovalOut>>;
  finish(i: {
    request: OdooShRequest;
    result: OdooShResult;
    instanceId: string;
    announced?: boolean;
  }): Promise<{ recorded: boolean }>;
}

export function createOdooShActivities(p: OdooShPorts): OdooShActivities {
  /**
   * The gate passed for this commit: UAT ran it from a passed gate, by the pipeline's own records
   * (`eligibleUatRuns`: the UAT ledger and the intake's gate record). A GitHub commit status is not
   * asked: anyone with write access to the repository can post one.
   */
  async function gatePassed(sha: string): Promise<'uat-ledger' | undefined> {
    const runs = await eligibleUatRuns(p.ledger, p.gates);
    return runs.some((r) => r.sha === sha) ? 'uat-ledger' : undefined;
  }

  return {
    async preflight(r) {
      const gate = await gatePassed(r.sha);
      if (!gate)
        return {
          ok: false,
          code: 'ODOOSH.GATE_NOT_PASSED',
          gate: 'none',
          reason: `commit ${r.sha.slice(0, 7)} never ran on UAT from a passed gate (by the pipeline's ledger; deploys past the gate do not count): only releases that passed the gate go to Odoo.sh`,
        };
      const head = await p.repo.branchHead(r.branch);
      if (!head) {
        if (r.stage === 'production')
          return {
            ok: false,
            code: 'ODOOSH.NO_BRANCH',
            gate,
            reason: `branch ${r.branch} does not exist: create the production branch on Odoo.sh first`,
          };
        return {
          ok: true,
          gate,
          reason: `branch ${r.branch} will be created at ${r.sha.slice(0, 7)}`,
          createBranch: true,
          plan: { move: true, fastForward: true, why: `create ${r.branch}` },
        };
      }
      const cmp = await p.repo.compare(head, r.sha);
      const plan = planMove(r.branch, head, r.sha, cmp.status, r.force);
      if (!plan.move && plan.code === 'ODOOSH.NOT_FAST_FORWARD')
        return { ok: false, code: plan.code, gate, reason: plan.why, previousSha: head, plan };
      return { ok: true, gate, reason: plan.why, previousSha: head, plan };
    },
    async move(i) {
      await p.repo.moveBranch(i.branch, i.sha, i.force, i.create);
      p.log.info('odoo.sh branch moved', { branch: i.branch, sha: i.sha, forced: i.force });
    },
    async build(i) {
      return readOdooShBuild(await p.repo.statuses(i.sha), i.stage);
    },
    async approval({ request, instanceId, previousSha }) {
      try {
        const a = p.approval;
        if (!a)
          throw new PipelineError(
            'CONFIG.APPROVAL_MISSING',
            'PROD approvals are not wired to the Odoo.sh target (no approval settings)',
          );
        const policy = approvalPolicy(
          a.options,
          { hasKey: a.keys().length > 0, slackEnabled: a.slackEnabled },
          `an Odoo.sh ${request.stage} move`,
          { id: request.requestedBy, emails: request.requesterEmails },
        );
        const running = await p.ledger.current(odooShEnvironment(request.branch)).catch(() => undefined);
        const fromVersion = running && running.sha === previousSha ? running.version : undefined;
        return {
          policy,
          commitRange: {
            from: previousSha,
            to: request.sha,
            ...(fromVersion ? { fromVersion } : {}),
            ...(previousSha && a.repositoryUrl
              ? { compareUrl: `${a.repositoryUrl}/compare/${previousSha}...${request.sha}` }
              : {}),
          },
          statusUrl: `${a.publicBaseUrl.replace(/\/+$/, '')}/api/deployments/${encodeURIComponent(instanceId)}`,
        };
      } catch (err) {
        const code = errorCode(err) ?? 'APPROVAL.UNAVAILABLE';
        if (isRetryable(err)) throw err;
        const m = messageOf(err);
        p.log.error('odoo.sh approval preparation failed', { instanceId, code, error: m });
        return {
          failed: { code, message: m.startsWith('[') ? m : `[${code}] ${m}` } satisfies ActivityFailure,
        };
      }
    },
    async finish({ request, result, instanceId, announced }) {
      const environment = odooShEnvironment(request.branch);
      let recorded = false;
      if (result.outcome === 'Succeeded') {
        try {
          await p.ledger.record(environment, {
            version: request.version,
            sha: request.sha,
            deployedAt: new Date().toISOString(),
            branch: request.branch,
            stage: request.stage,
            instanceId,
            ...(result.targetUrl ? { url: result.targetUrl } : {}),
          });
          recorded = true;
        } catch (err) {
          p.log.error('recording the Odoo.sh release failed', { instanceId, error: messageOf(err) });
        }
      }
      // an approval that ended without a move was announced by the approval gate already
      if (p.notify && !announced) {
        const kind = result.outcome === 'Succeeded' ? 'succeeded' : 'failed';
        await p.notify.notify({
          kind,
          environment,
          version: request.version,
          sha: request.sha,
          mergedBy: request.requestedBy,
          instanceId,
          url: result.targetUrl,
          reason: kind === 'failed' ? result.reason : undefined,
        });
      }
      return { recorded };
    },
  };
}

export function odooShPortsFromConfig(config: Config, log: Logger = createLogger()): OdooShPorts {
  const app = githubOptionsFromConfig(config);
  if (!app || !config.ODOOSH_REPOSITORY)
    throw new PipelineError(
      'CONFIG.ODOOSH_MISSING',
      'ODOOSH_REPOSITORY and GITHUB_REPOSITORY (with GITHUB_TOKEN or the GitHub App settings) must be set for the Odoo.sh target',
      false,
    );
  return {
    repo: createOdooShRepo({ ...app, repository: config.ODOOSH_REPOSITORY }),
    github: createGitHub(app),
    gateContext: config.GATE_STATUS_CONTEXT ?? 'deploy/uat',
    ledger: createLedger(ledgerContainer(config)),
    gates: createDeliveriesStore(ledgerContainer(config)),
    notify: createDeployNotifier(config, log),
    approval: {
      options: prodOptionsFromConfig(config),
      publicBaseUrl: config.PUBLIC_BASE_URL,
      keys: () => signingKeys(config),
      slackEnabled: !!(config.SLACK_WEBHOOK_URL || config.SLACK_BOT_TOKEN),
      repositoryUrl: webUrl(config, config.ODOOSH_REPOSITORY),
    },
    log,
  };
}

/** https://github.com/<repo> (or the GitHub Enterprise host of GITHUB_API_URL) */
function webUrl(config: Config, repository: string): string {
  const api = config.GITHUB_API_URL ?? 'https://api.github.com';
  return `${api === 'https://api.github.com' ? 'https://github.com' : api.replace(/\/api\/v3\/?$/, '').replace(/\/+$/, '')}/${repository}`;
}

let current: OdooShActivities | undefined;

/** Wire the activities to other ports (tests); production builds them from settings on first use. */
export function setOdooShPorts(ports: OdooShPorts | undefined): void {
  current = ports ? createOdooShActivities(ports) : undefined;
}
function acts(): OdooShActivities {
  current ??= createOdooShActivities(odooShPortsFromConfig(loadConfig(process.env)));
  return current;
}

df.app.activity('odooShPreflight', { handler: (r: OdooShRequest) => acts().preflight(r) });
df.app.activity('odooShMove', { handler: (i: Parameters<OdooShActivities['move']>[0]) => acts().move(i) });
df.app.activity('odooShBuild', { handler: (i: Parameters<OdooShActivities['build']>[0]) => acts().build(i) });
df.app.activity('odooShApproval', {
  handler: (i: Parameters<OdooShActivities['approval']>[0]) => acts().approval(i),
});
df.app.activity('odooShFinish', {
  handler: (i: Parameters<OdooShActivities['finish']>[0]) => acts().finish(i),
});
