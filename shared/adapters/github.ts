/**
 * GitHub REST adapter (Octokit): the commit's statuses (with who posted each) and check runs, whether a commit is on a branch, commit status creation, and the
 * VERSION file at a commit. Authenticates with a GitHub App installation token (@octokit/auth-app,
 * which also refreshes the token) or a plain token. Base URL from GITHUB_API_URL (GitHub Enterprise:
 * https://<host>/api/v3).
 */
import { Octokit } from '@octokit/rest';
import { createAppAuth } from '@octokit/auth-app';
import type { Config } from '../config';
import { PipelineError } from '../domain/errors';
import type { CheckRun, CommitStatus } from '../domain/coverage-gate';
import { clip } from '../domain/coverage-gate';

export interface GitHubPort {
  /**
   * every status of the commit, newest first, each with its `creator` (list statuses; up to
   * MAX_STATUS_PAGES pages of 100): what the coverage gate judges who posted
   */
  statusHistory(sha: string): Promise<CommitStatus[]>;
  /** true when `sha` is the head of `branch` or one of its ancestors (the commit was merged there) */
  isOnBranch(sha: string, branch: string): Promise<boolean>;
  checkRuns(sha: string, name?: string): Promise<CheckRun[]>;
  createStatus(
    sha: string,
    s: {
      state: 'success' | 'failure' | 'error' | 'pending';
      context: string;
      description: string;
      targetUrl?: string;
    },
  ): Promise<void>;
  /** content of a file at a commit, or undefined when it does not exist */
  fileAt(path: string, sha: string): Promise<string | undefined>;
}

/** GitHub keeps at most 1,000 statuses per commit and context: 10 pages of 100. */
export const MAX_STATUS_PAGES = 10;

export interface GitHubOptions {
  repository: string;
  baseUrl?: string;
  token?: string;
  app?: { appId: number; privateKey: string; installationId: number };
  /** per-request timeout */
  timeoutMs?: number;
}

export function githubOptionsFromConfig(config: Config): GitHubOptions | undefined {
  if (!config.GITHUB_REPOSITORY) return undefined;
  const app =
    config.GITHUB_APP_ID && config.GITHUB_APP_PRIVATE_KEY && config.GITHUB_APP_INSTALLATION_ID
      ? {
          appId: config.GITHUB_APP_ID,
          privateKey: config.GITHUB_APP_PRIVATE_KEY.replace(/\\n/g, '\n'),
          installationId: config.GITHUB_APP_INSTALLATION_ID,
        }
      : undefined;
  return {
    repository: config.GITHUB_REPOSITORY,
    baseUrl: config.GITHUB_API_URL,
    token: config.GITHUB_TOKEN,
    app,
  };
}

export function classify(err: unknown, what: string): PipelineError {
  const status = (err as { status?: number }).status;
  const msg = (err as Error).message ?? String(err);
  if (status === 401 || status === 403)
    return new PipelineError(
      'GITHUB.AUTH_FAILED',
      `${what}: GitHub answered ${status} (check the token or the App's permissions)`,
      false,
    );
  if (status === 404) return new PipelineError('GITHUB.NOT_FOUND', `${what}: not found`, false);
  if (status === 422)
    return new PipelineError('GITHUB.REJECTED', `${what}: GitHub rejected the request (${msg})`, false);
  return new PipelineError(
    'GITHUB.UNAVAILABLE',
    `${what}: ${status ? `GitHub answered ${status}` : msg}`,
    true,
  );
}

/** The one Octokit setup (base URL, token or GitHub App, timeout, silent log) every GitHub adapter uses. */
export function createOctokit(opts: GitHubOptions): Octokit {
  return new Octokit({
    baseUrl: (opts.baseUrl ?? 'https://api.github.com').replace(/\/+$/, ''),
    userAgent: 'odoo-mta-pipeline',
    ...(opts.app ? { authStrategy: createAppAuth, auth: opts.app } : opts.token ? { auth: opts.token } : {}),
    request: { timeout: opts.timeoutMs ?? 8000 },
    log: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
  });
}

export function createGitHub(opts: GitHubOptions): GitHubPort {
  const [owner, repo] = opts.repository.split('/');
  const octokit = createOctokit(opts);
  return {
    async statusHistory(sha) {
      const out: CommitStatus[] = [];
      try {
        let pages = 0;
        for await (const res of octokit.paginate.iterator(octokit.rest.repos.listCommitStatusesForRef, {
          owner,
          repo,
          ref: sha,
          per_page: 100,
        })) {
          for (const s of res.data) {
            out.push({
              context: s.context,
              state: s.state,
              description: s.description,
              updated_at: s.updated_at,
              creator: s.creator ? { login: s.creator.login, id: s.creator.id } : null,
            });
          }
          if (++pages >= MAX_STATUS_PAGES) break;
        }
      } catch (err) {
        throw classify(err, `reading the statuses of ${sha.slice(0, 7)}`);
      }
      return out;
    },
    async isOnBranch(sha, branch) {
      // The branch head through the git refs API (`heads/<branch>` cannot name a tag), then compare
      // head...sha: `identical` or `behind` means sha is the head or one of its ancestors. Comparing
      // with the branch *name* would let a tag of the same name answer instead of the branch.
      let head: string;
      try {
        const ref = await octokit.rest.git.getRef({ owner, repo, ref: `heads/${branch}` });
        head = ref.data.object.sha;
      } catch (err) {
        throw classify(err, `reading branch ${branch}`);
      }
      if (head === sha) return true;
      try {
        const cmp = await octokit.rest.repos.compareCommitsWithBasehead({
          owner,
          repo,
          basehead: `${head}...${sha}`,
          per_page: 1,
        });
        return cmp.data.status === 'identical' || cmp.data.status === 'behind';
      } catch (err) {
        // a commit GitHub does not know (or not in this repository) is not on the branch
        if ((err as { status?: number }).status === 404) return false;
        throw classify(err, `comparing ${sha.slice(0, 7)} with ${branch}`);
      }
    },
    async checkRuns(sha, name) {
      try {
        const res = await octokit.rest.checks.listForRef({
          owner,
          repo,
          ref: sha,
          per_page: 100,
          ...(name ? { check_name: name } : {}),
        });
        return res.data.check_runs.map((r) => ({
          name: r.name,
          status: r.status,
          conclusion: r.conclusion,
          completed_at: r.completed_at,
          output: { title: r.output?.title ?? null, summary: r.output?.summary ?? null },
          app: r.app ? { id: r.app.id, slug: r.app.slug ?? null } : null,
        }));
      } catch (err) {
        throw classify(err, `reading check runs of ${sha.slice(0, 7)}`);
      }
    },
    async createStatus(sha, s) {
      try {
        await octokit.rest.repos.createCommitStatus({
          owner,
          repo,
          sha,
          state: s.state,
          context: s.context,
          description: clip(s.description),
          ...(s.targetUrl ? { target_url: s.targetUrl } : {}),
        });
      } catch (err) {
        throw classify(err, `posting status ${s.context} on ${sha.slice(0, 7)}`);
      }
    },
    async fileAt(path, sha) {
      try {
        const res = await octokit.rest.repos.getContent({ owner, repo, path, ref: sha });
        const data = res.data as { type?: string; content?: string; encoding?: string };
        if (Array.isArray(res.data) || data.type !== 'file' || typeof data.content !== 'string')
          return undefined;
        return data.encoding === 'base64'
          ? Buffer.from(data.content, 'base64').toString('utf8')
          : data.content;
      } catch (err) {
        if ((err as { status?: number }).status === 404) return undefined;
        throw classify(err, `reading ${path} at ${sha.slice(0, 7)}`);
      }
    },
  };
}
