/**
 * GitHub Deployments API (deployments + deployment statuses) through Octokit, so each release is visible
 * per environment on GitHub; plus the compare API (files changed between the running and the new commit,
 * used to pick the modules to update). Errors are coded like shared/adapters/github.ts.
 */
import { PipelineError } from '../domain/errors';
import { createOctokit, type GitHubOptions } from './github';

export type DeploymentState =
  | 'error'
  | 'failure'
  | 'inactive'
  | 'in_progress'
  | 'queued'
  | 'pending'
  | 'success';

export interface GitHubDeploymentsPort {
  /** create a deployment of `sha` to `environment`; returns its id */
  create(d: {
    sha: string;
    environment: string;
    version: string;
    description?: string;
    payload?: Record<string, unknown>;
  }): Promise<number>;
  status(
    id: number,
    s: { state: DeploymentState; description?: string; environmentUrl?: string; logUrl?: string },
  ): Promise<void>;
  /** files changed between two commits (paths), or undefined when GitHub cannot tell (too many files) */
  changedFiles(base: string, head: string): Promise<string[] | undefined>;
  /** how many commits `head` has that `base` has not (the compare API's `total_commits`), when GitHub says */
  commitCount(base: string, head: string): Promise<number | undefined>;
}

function classify(err: unknown, what: string): PipelineError {
  const status = (err as { status?: number }).status;
  if (status === 401 || status === 403)
    return new PipelineError('GITHUB.AUTH_FAILED', `${what}: GitHub answered ${status}`);
  if (status === 404) return new PipelineError('GITHUB.NOT_FOUND', `${what}: not found`);
  if (status === 409 || status === 422)
    return new PipelineError('GITHUB.REJECTED', `${what}: GitHub answered ${status}`);
  return new PipelineError(
    'GITHUB.UNAVAILABLE',
    `${what}: ${status ? `GitHub answered ${status}` : (err as Error).name}`,
    true,
  );
}

const clip = (s: string | undefined, n = 140) => (s && s.length > n ? s.slice(0, n - 1) + '…' : s);

export function createGitHubDeployments(opts: GitHubOptions): GitHubDeploymentsPort {
  const [owner, repo] = opts.repository.split('/');
  const octokit = createOctokit(opts);
  return {
    async create(d) {
      try {
        const res = await octokit.rest.repos.createDeployment({
          owner,
          repo,
          ref: d.sha,
          environment: d.environment,
          description: clip(d.description ?? `${d.version} to ${d.environment}`),
          auto_merge: false,
          required_contexts: [], // the pipeline's own coverage gate already ran
          transient_environment: false,
          production_environment: d.environment === 'prod',
          payload: { version: d.version, ...(d.payload ?? {}) },
        });
        const id = (res.data as { id?: number }).id;
        if (typeof id !== 'number')
          throw new PipelineError(
            'GITHUB.REJECTED',
            `creating a deployment of ${d.sha}: ${(res.data as { message?: string }).message ?? 'no id'}`,
          );
        return id;
      } catch (err) {
        if (err instanceof PipelineError) throw err;
        throw classify(err, `creating a deployment of ${d.sha.slice(0, 7)}`);
      }
    },
    async status(id, s) {
      try {
        await octokit.rest.repos.createDeploymentStatus({
          owner,
          repo,
          deployment_id: id,
          state: s.state,
          description: clip(s.description),
          environment_url: s.environmentUrl,
          log_url: s.logUrl,
          auto_inactive: true,
        });
      } catch (err) {
        throw classify(err, `deployment ${id} status ${s.state}`);
      }
    },
    async commitCount(base, head) {
      try {
        const res = await octokit.rest.repos.compareCommitsWithBasehead({
          owner,
          repo,
          basehead: `${base}...${head}`,
          per_page: 1,
        });
        const n = res.data.total_commits;
        return typeof n === 'number' && Number.isInteger(n) && n >= 0 ? n : undefined;
      } catch (err) {
        throw classify(err, `counting the commits ${base.slice(0, 7)}...${head.slice(0, 7)}`);
      }
    },
    async changedFiles(base, head) {
      try {
        const res = await octokit.rest.repos.compareCommitsWithBasehead({
          owner,
          repo,
          basehead: `${base}...${head}`,
          per_page: 100,
        });
        const files = res.data.files;
        // the compare API lists at most 300 files: beyond that the change set is unknown
        if (!files || (res.data.files?.length ?? 0) >= 300) return undefined;
        return files.flatMap((f) => [f.filename, ...(f.previous_filename ? [f.previous_filename] : [])]);
      } catch (err) {
        throw classify(err, `comparing ${base.slice(0, 7)}...${head.slice(0, 7)}`);
      }
    },
  };
}
