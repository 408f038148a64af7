/**
 * The Odoo.sh target's side of GitHub (Octokit): the tracked branch's head, the compare between two
 * commits (is the move a fast-forward?), moving the branch, and the commit statuses Odoo.sh posts.
 * The branch is moved with `PATCH /repos/{owner}/{repo}/git/refs/heads/{branch}`; with `force: false`
 * GitHub itself refuses a non-fast-forward (422), so a race with someone pushing meanwhile can't
 * rewind the branch either.
 */
import { PipelineError } from '../domain/errors';
import type { CompareStatus } from '../domain/odoosh';
import { classify, createOctokit, type GitHubOptions } from './github';

export interface OdooShStatus {
  context: string;
  state: string;
  description?: string | null;
  target_url?: string | null;
}

export interface OdooShRepoPort {
  /** the commit the branch points to, or undefined when the branch does not exist */
  branchHead(branch: string): Promise<string | undefined>;
  /** GitHub's compare of base...head */
  compare(base: string, head: string): Promise<{ status: CompareStatus; aheadBy: number; behindBy: number }>;
  /** move (or create) the branch; `force: false` refuses a non-fast-forward (ODOOSH.NOT_FAST_FORWARD) */
  moveBranch(branch: string, sha: string, force: boolean, create?: boolean): Promise<void>;
  /** latest status per context of a commit */
  statuses(sha: string): Promise<OdooShStatus[]>;
}

export function createOdooShRepo(opts: GitHubOptions): OdooShRepoPort {
  const [owner, repo] = opts.repository.split('/');
  const octokit = createOctokit(opts);
  return {
    async branchHead(branch) {
      try {
        const res = await octokit.rest.git.getRef({ owner, repo, ref: `heads/${branch}` });
        return res.data.object.sha;
      } catch (err) {
        if ((err as { status?: number }).status === 404) return undefined;
        throw classify(err, `reading branch ${branch} of ${opts.repository}`);
      }
    },
    async compare(base, head) {
      try {
        const res = await octokit.rest.repos.compareCommitsWithBasehead({
          owner,
          repo,
          basehead: `${base}...${head}`,
          per_page: 1,
        });
        return {
          status: res.data.status as CompareStatus,
          aheadBy: res.data.ahead_by,
          behindBy: res.data.behind_by,
        };
      } catch (err) {
        throw classify(err, `comparing ${base.slice(0, 7)}...${head.slice(0, 7)} in ${opts.repository}`);
      }
    },
    async moveBranch(branch, sha, force, create = false) {
      try {
        if (create) await octokit.rest.git.createRef({ owner, repo, ref: `refs/heads/${branch}`, sha });
        else await octokit.rest.git.updateRef({ owner, repo, ref: `heads/${branch}`, sha, force });
      } catch (err) {
        const status = (err as { status?: number }).status;
        if (status === 422 && !force && /fast.?forward/i.test((err as Error).message ?? ''))
          throw new PipelineError(
            'ODOOSH.NOT_FAST_FORWARD',
            `GitHub refused to move ${branch} to ${sha.slice(0, 7)}: not a fast-forward`,
            false,
          );
        throw classify(err, `moving ${branch} of ${opts.repository} to ${sha.slice(0, 7)}`);
      }
    },
    async statuses(sha) {
      try {
        const res = await octokit.rest.repos.getCombinedStatusForRef({
          owner,
          repo,
          ref: sha,
          per_page: 100,
        });
        return res.data.statuses.map((s) => ({
          context: s.context,
          state: s.state,
          description: s.description,
          target_url: s.target_url,
        }));
      } catch (err) {
        throw classify(err, `reading statuses of ${sha.slice(0, 7)} in ${opts.repository}`);
      }
    },
  };
}
