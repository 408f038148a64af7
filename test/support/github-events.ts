/**
 * GitHub's own webhook examples (@octokit/webhooks-examples) as test fixtures, deep-copied and
 * optionally patched, and signed like GitHub signs them.
 */
import { createHmac } from 'node:crypto';
import examples from '@octokit/webhooks-examples';

export const EXAMPLE_REPO = 'Codertocat/Hello-World';

type Obj = Record<string, any>;

/** A deep copy of GitHub's example for `event` that matches `pick`. */
export function example(event: string, pick: (e: Obj) => boolean = () => true): Obj {
  const group = (examples as Array<{ name: string; examples: Obj[] }>).find((g) => g.name === event);
  const found = group?.examples.find(pick);
  if (!found) throw new Error(`no GitHub example for ${event} matching the filter`);
  return structuredClone(found);
}

/** A push of `sha` to refs/heads/master (GitHub's example, with the commit sha set). */
export function pushTo(sha: string, branch = 'master'): Obj {
  const p = example('push', (e) => e.ref === 'refs/heads/master');
  p.ref = `refs/heads/${branch}`;
  p.after = sha;
  if (p.head_commit) p.head_commit.id = sha;
  return p;
}

/**
 * A completed, successful workflow_run (workflow "test", file `.github/workflows/test.yml`, on master)
 * for `sha`, run by a push as an image build is (GitHub's example was dispatched: `event` set to push).
 */
export function workflowRunFor(sha: string, runId = 30433642, attempt = 1): Obj {
  const w = example(
    'workflow_run',
    (e) => e.action === 'completed' && e.workflow_run.conclusion === 'success',
  );
  w.workflow_run.head_sha = sha;
  w.workflow_run.event = 'push';
  w.workflow_run.id = runId;
  w.workflow_run.run_attempt = attempt;
  // the example comes from another repository (octo-org/octo-repo): make it ours
  w.repository.full_name = EXAMPLE_REPO;
  if (w.workflow_run.head_repository) w.workflow_run.head_repository.full_name = EXAMPLE_REPO;
  return w;
}

export function statusEventFor(sha: string, context: string, description: string, state = 'success'): Obj {
  const s = example('status');
  Object.assign(s, { sha, context, description, state });
  return s;
}

export function checkRunEventFor(sha: string, name: string): Obj {
  const c = example('check_run', (e) => e.action === 'completed');
  c.check_run.name = name;
  c.check_run.head_sha = sha;
  return c;
}

export function sign(secret: string, body: string | Buffer): string {
  return 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
}

export function webhookHeaders(
  event: string,
  deliveryId: string,
  body: string | Buffer,
  secret: string,
): Record<string, string> {
  return {
    'content-type': 'application/json',
    'x-github-event': event,
    'x-github-delivery': deliveryId,
    'x-hub-signature-256': sign(secret, body),
    'user-agent': 'GitHub-Hookshot/test',
  };
}
