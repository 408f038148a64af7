/**
 * Side effects of the Odoo.sh target (`deployOdooSh`): check the release passed the gate, plan and
 * move the tracked branch through the GitHub API, read Odoo.sh's commit status, record and notify.
 * Built by a factory taking ports, so tests wire a local server that speaks GitHub's REST API.
 */
import * as df from 'durable-functions';
import { loadConfig, type Config } from '../../shared/config';
import { createDeployNotifier, type DeployNotifier } from '../../shared/adapters/deploy-notify';
import { createGitHub, githubOptionsFromConfig, type GitHubPort } from '../../shared/adapters/github';
import { createLedger, ledgerContainer, type Ledger } from '../../shared/adapters/ledger';
import { createOdooShRepo, type OdooShRepoPort } from '../../shared/adapters/odoosh';
import { PipelineError, messageOf } from '../../shared/domain/errors';
import { planMove, readOdooShBuild, odooShEnvironment, type MovePlan, type OdooShBuild, type OdooShRequest, type OdooShResult, type OdooShStage } from '../../shared/domain/odoosh';
import { createLogger, type Logger } from '../../shared/log';

export interface OdooShPorts {
  /** the repository Odoo.sh tracks */
  repo: OdooShRepoPort;
  /** the application repository (where the gate posted its status); often the same repository */
  github?: GitHubPort;
  gateContext: string;
  ledger: Ledger;
  notify?: DeployNotifier;
  log: Logger;
}

export interface OdooShPreflightOut {
  ok: boolean;
  code?: string;
  reason: string;
  previousSha?: string;
  plan?: MovePlan;
  createBranch?: boolean;
  gate: 'status' | 'uat-ledger' | 'none';
}

export interface OdooShActivities {
  preflight(r: OdooShRequest): Promise<OdooShPreflightOut>;
  move(i: { branch: string; sha: string; force: boolean; create: boolean }): Promise<void>;
  build(i: { sha: string; stage: OdooShStage }): Promise<OdooShBuild>;
  finish(i: { request: OdooShRequest; result: OdooShResult; instanceId: string }): Promise<{ recorded: boolean }>;
}

export function createOdooShActivities(p: OdooShPorts): OdooShActivities {
  /** the gate passed for this commit: its gate status is success, or UAT already ran it */
  async function gatePassed(sha: string): Promise<'status' | 'uat-ledger' | undefined> {
    if (p.github) {
      const statuses = await p.github.commitStatuses(sha);
      const gate = statuses.find((s) => s.context === p.gateContext);
      if (gate?.state === 'success') return 'status';
    }
    const uat = await p.ledger.history('uat', 100);
    return uat.some((r) => r.sha === sha) ? 'uat-ledger' : undefined;
  }

  return {
    async preflight(r) {
      const gate = await gatePassed(r.sha);
      if (!gate)
        return { ok: false, code: 'ODOOSH.GATE_NOT_PASSED', gate: 'none', reason: `commit ${r.sha.slice(0, 7)} has no successful ${p.gateContext} status and never ran on UAT: only releases that passed the gate go to Odoo.sh` };
      const head = await p.repo.branchHead(r.branch);
      if (!head) {
        if (r.stage === 'production') return { ok: false, code: 'ODOOSH.NO_BRANCH', gate, reason: `branch ${r.branch} does not exist: create the production branch on Odoo.sh first` };
        return { ok: true, gate, reason: `branch ${r.branch} will be created at ${r.sha.slice(0, 7)}`, createBranch: true, plan: { move: true, fastForward: true, why: `create ${r.branch}` } };
      }
      const cmp = await p.repo.compare(head, r.sha);
      const plan = planMove(r.branch, head, r.sha, cmp.status, r.force);
      if (!plan.move && plan.code === 'ODOOSH.NOT_FAST_FORWARD') return { ok: false, code: plan.code, gate, reason: plan.why, previousSha: head, plan };
      return { ok: true, gate, reason: plan.why, previousSha: head, plan };
    },
    async move(i) {
      await p.repo.moveBranch(i.branch, i.sha, i.force, i.create);
      p.log.info('odoo.sh branch moved', { branch: i.branch, sha: i.sha, forced: i.force });
    },
    async build(i) {
      return readOdooShBuild(await p.repo.statuses(i.sha), i.stage);
    },
    async finish({ request, result, instanceId }) {
      const environment = odooShEnvironment(request.branch);
      let recorded = false;
      if (result.outcome === 'Succeeded') {
        try {
          await p.ledger.record(environment, { version: request.version, sha: request.sha, deployedAt: new Date().toISOString(), branch: request.branch, stage: request.stage, instanceId, ...(result.targetUrl ? { url: result.targetUrl } : {}) });
          recorded = true;
        } catch (err) {
          p.log.error('recording the Odoo.sh release failed', { instanceId, error: messageOf(err) });
        }
      }
      if (p.notify) {
        const kind = result.outcome === 'Succeeded' ? 'succeeded' : 'failed';
        await p.notify.notify({ kind, environment, version: request.version, sha: request.sha, mergedBy: request.requestedBy, instanceId, url: result.targetUrl, reason: kind === 'failed' ? result.reason : undefined });
      }
      return { recorded };
    },
  };
}

export function odooShPortsFromConfig(config: Config, log: Logger = createLogger()): OdooShPorts {
  const app = githubOptionsFromConfig(config);
  if (!app || !config.ODOOSH_REPOSITORY) throw new PipelineError('CONFIG.ODOOSH_MISSING', 'ODOOSH_REPOSITORY and GITHUB_REPOSITORY (with GITHUB_TOKEN or the GitHub App settings) must be set for the Odoo.sh target', false);
  return {
    repo: createOdooShRepo({ ...app, repository: config.ODOOSH_REPOSITORY }),
    github: createGitHub(app),
    gateContext: config.GATE_STATUS_CONTEXT ?? 'deploy/uat',
    ledger: createLedger(ledgerContainer(config)),
    notify: createDeployNotifier(config, log),
    log,
  };
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
df.app.activity('odooShFinish', { handler: (i: Parameters<OdooShActivities['finish']>[0]) => acts().finish(i) });
