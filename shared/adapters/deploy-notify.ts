/**
 * Deploy notifications through two ports — GitHub Deployments and Slack — both optional, neither ever
 * failing a deploy: every call is caught, logged and reported back as `{ github: false }` / `{ slack: false }`.
 */
import type { Config } from '../config';
import { messageOf } from '../domain/errors';
import type { Logger } from '../log';
import { githubOptionsFromConfig } from './github';
import {
  createGitHubDeployments,
  type DeploymentState,
  type GitHubDeploymentsPort,
} from './github-deployments';
import { createSlack, deployMessage, type SlackPort } from './slack';

export interface DeployNotice {
  kind: 'started' | 'succeeded' | 'failed' | 'rolled-back' | 'needs-attention';
  environment: string;
  version: string;
  sha: string;
  mergedBy?: string;
  instanceId: string;
  githubDeploymentId?: number;
  url?: string;
  previous?: { version: string };
  reason?: string;
  failedStep?: string;
  logs?: string[];
  totalMs?: number;
  downtimeMs?: number;
}

export interface DeployNotifier {
  notify(e: DeployNotice): Promise<{ githubDeploymentId?: number; github?: boolean; slack?: boolean }>;
  changedFiles?(base: string, head: string): Promise<string[] | undefined>;
}

const STATE: Record<DeployNotice['kind'], DeploymentState> = {
  started: 'in_progress',
  succeeded: 'success',
  failed: 'failure',
  'rolled-back': 'failure',
  'needs-attention': 'error',
};

export function createNotifier(o: {
  github?: GitHubDeploymentsPort;
  slack?: SlackPort;
  repositoryUrl?: string;
  publicBaseUrl?: string;
  logsBaseUrl?: string;
  log: Logger;
}): DeployNotifier {
  return {
    async notify(e) {
      const out: { githubDeploymentId?: number; github?: boolean; slack?: boolean } = {};
      const statusUrl = o.publicBaseUrl
        ? `${o.publicBaseUrl.replace(/\/+$/, '')}/api/deployments/${encodeURIComponent(e.instanceId)}`
        : undefined;
      // the saved logs: under logsBaseUrl when one is configured, else the API's GET /api/deployments/{id}/logs
      const logsUrl = !e.logs?.length
        ? undefined
        : o.logsBaseUrl
          ? `${o.logsBaseUrl.replace(/\/+$/, '')}/${e.logs[0].replace(/\/[^/]*$/, '')}`
          : o.publicBaseUrl
            ? `${o.publicBaseUrl.replace(/\/+$/, '')}/api/deployments/${encodeURIComponent(e.instanceId)}/logs`
            : undefined;
      if (o.github) {
        try {
          let id = e.githubDeploymentId;
          if (e.kind === 'started' || id === undefined) {
            id = await o.github.create({
              sha: e.sha,
              environment: e.environment,
              version: e.version,
              payload: { instanceId: e.instanceId },
            });
            out.githubDeploymentId = id;
          }
          const description =
            e.kind === 'started'
              ? `deploying ${e.version}`
              : e.kind === 'succeeded'
                ? `${e.version} is live`
                : `${e.kind}: ${e.reason ?? ''}`;
          await o.github.status(id, {
            state: STATE[e.kind],
            description,
            environmentUrl: e.kind === 'succeeded' ? e.url : undefined,
            logUrl: logsUrl ?? statusUrl,
          });
          out.github = true;
        } catch (err) {
          out.github = false;
          o.log.warn('github deployment status failed (ignored)', { kind: e.kind, error: messageOf(err) });
        }
      }
      if (o.slack?.enabled) {
        out.slack = await o.slack.postQuietly(
          deployMessage({
            kind: e.kind,
            environment: e.environment,
            version: e.version,
            sha: e.sha,
            mergedBy: e.mergedBy,
            totalMs: e.totalMs,
            downtimeMs: e.downtimeMs,
            reason: e.reason,
            failedStep: e.failedStep,
            previousVersion: e.previous?.version,
            url: e.url,
            commitUrl: o.repositoryUrl ? `${o.repositoryUrl}/commit/${e.sha}` : undefined,
            logsUrl,
            statusUrl,
          }),
        );
      }
      return out;
    },
    changedFiles: o.github ? (b, h) => o.github!.changedFiles(b, h) : undefined,
  };
}

export function createDeployNotifier(config: Config, log: Logger): DeployNotifier {
  const gh = githubOptionsFromConfig(config);
  const github = gh && (gh.token || gh.app) ? createGitHubDeployments(gh) : undefined;
  const slack = createSlack({
    webhookUrl: config.SLACK_WEBHOOK_URL,
    botToken: config.SLACK_BOT_TOKEN,
    channel: config.SLACK_CHANNEL,
    apiUrl: config.SLACK_API_URL,
    log,
  });
  const api = config.GITHUB_API_URL ?? 'https://api.github.com';
  const repositoryUrl = config.GITHUB_REPOSITORY
    ? `${api === 'https://api.github.com' ? 'https://github.com' : api.replace(/\/api\/v3\/?$/, '')}/${config.GITHUB_REPOSITORY}`
    : undefined;
  return createNotifier({ github, slack, repositoryUrl, publicBaseUrl: config.PUBLIC_BASE_URL, log });
}
