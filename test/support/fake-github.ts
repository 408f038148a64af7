/**
 * A node:http server speaking the subset of GitHub's REST API the intake uses, behind the real Octokit
 * adapter: combined status, statuses, check runs, commit status creation, contents (VERSION), and for
 * the Odoo.sh target git refs (get/create/update with GitHub's fast-forward rule) over a small commit
 * graph, and the compare API; plus GitHub's Deployments API (deployments, their statuses, the compare
 * API's changed files), mounted from test/support/fake-github-deployments.ts (one protocol code), so
 * the deploy notifier has a GitHub to report to (the demo).
 * Tests set what GitHub "has" per commit and read back what the pipeline posted.
 */
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { deploymentsApi, sendJson as send, type DeploymentsState } from './fake-github-deployments';

/** The account GitHub Actions posts statuses as with `GITHUB_TOKEN` (the Odoo repository's ci.yml). */
export const CI_CREATOR = { login: 'github-actions[bot]', id: 41898282, type: 'Bot' };
/** The GitHub App that creates GitHub Actions' check runs. */
export const CI_APP = { id: 15368, slug: 'github-actions', name: 'GitHub Actions' };
/** The account the pipeline's own token posts as (the gate's `deploy/uat` status). */
export const PIPELINE_CREATOR = { login: 'odoo-mta-pipeline[bot]', id: 90000001, type: 'Bot' };

export interface FakeUser {
  login: string;
  id: number;
  type?: string;
}
export interface FakeStatus {
  context: string;
  state: 'success' | 'failure' | 'error' | 'pending';
  description?: string | null;
  updated_at?: string;
  target_url?: string | null;
  /** who posted it (GitHub's list-statuses payload: `creator`); unset → the CI account */
  creator?: FakeUser | null;
}
export interface FakeCheckRun {
  name: string;
  status: 'queued' | 'in_progress' | 'completed';
  conclusion?: string | null;
  completed_at?: string | null;
  output?: { title?: string | null; summary?: string | null };
  /** the GitHub App that created it (check run payload: `app`); unset → GitHub Actions */
  app?: { id: number; slug: string; name?: string } | null;
}
export interface PostedStatus {
  sha: string;
  state: string;
  context: string;
  description: string;
  target_url?: string;
  authorization?: string;
}

export interface FakeGitHub extends DeploymentsState {
  url: string;
  repository: string;
  /** every status posted on a commit, oldest first (GitHub keeps them all; the combined status shows the latest per context) */
  statuses: Map<string, FakeStatus[]>;
  checkRuns: Map<string, FakeCheckRun[]>;
  files: Map<string, string>; // key `${sha}:${path}`
  posted: PostedStatus[];
  requests: Array<{ method: string; path: string; authorization?: string }>;
  /** commit graph: sha → parent sha (undefined for a root) */
  commits: Map<string, string | undefined>;
  /** branches: name → sha */
  refs: Map<string, string>;
  /** every accepted ref update, in order */
  refUpdates: Array<{ branch: string; from?: string; to: string; force: boolean }>;
  /** add a commit (and its parent chain must already exist); returns the sha */
  addCommit(sha: string, parent?: string): string;
  /** answer every request with this status (outage simulation) */
  failWith?: number;
  /** answer only the requests whose path matches with this status (e.g. GitHub failing on the compare API) */
  failPath?: { match: RegExp; status: number };
  /** the CI (or `creator`) posts a `coverage` status on the commit */
  setCoverage(sha: string, description: string, state?: FakeStatus['state'], creator?: FakeUser): void;
  /** append a status as GitHub does when someone posts one */
  addStatus(sha: string, status: FakeStatus): void;
  setVersion(sha: string, version: string): void;
  stop(): Promise<void>;
}

function sendWith(res: ServerResponse, status: number, body: unknown, headers: Record<string, string>): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startFakeGitHub(repository = 'acme/odoo-mta'): Promise<FakeGitHub> {
  const [owner, repo] = repository.split('/');
  const prefix = `/repos/${owner}/${repo}`;
  const fake: Omit<FakeGitHub, 'url' | 'stop'> = {
    repository,
    statuses: new Map(),
    checkRuns: new Map(),
    files: new Map(),
    posted: [],
    requests: [],
    commits: new Map(),
    refs: new Map(),
    refUpdates: [],
    deployments: [],
    compares: new Map(),
    addCommit(sha, parent) {
      if (parent !== undefined && !fake.commits.has(parent))
        throw new Error(`fake GitHub: parent ${parent} unknown`);
      fake.commits.set(sha, parent);
      return sha;
    },
    setCoverage(sha, description, state = 'success', creator = CI_CREATOR) {
      fake.addStatus(sha, { context: 'coverage', state, description, creator });
    },
    addStatus(sha, status) {
      const list = fake.statuses.get(sha) ?? [];
      list.push({ updated_at: new Date().toISOString(), ...status });
      fake.statuses.set(sha, list);
    },
    setVersion(sha, version) {
      fake.files.set(`${sha}:VERSION`, version + '\n');
    },
  };
  // the Deployments API (and the compare answers set in `compares`); everything else is answered below
  const deployments = deploymentsApi(fake, repository);
  const server: Server = createServer((req, res) => {
    void (async () => {
      const u = new URL(req.url ?? '/', 'http://localhost');
      const authorization = req.headers.authorization;
      fake.requests.push({ method: req.method ?? 'GET', path: u.pathname + u.search, authorization });
      const body = await readBody(req);
      if (fake.failWith) return send(res, fake.failWith, { message: 'simulated outage' });
      if (fake.failPath?.match.test(u.pathname))
        return send(res, fake.failPath.status, { message: 'simulated outage' });
      if (!u.pathname.startsWith(prefix + '/')) return send(res, 404, { message: 'Not Found' });
      const mounted = deployments(req.method ?? 'GET', u.pathname, body);
      if (mounted) return send(res, mounted.status, mounted.body);
      const rest = u.pathname.slice(prefix.length);
      let m: RegExpExecArray | null;
      if (req.method === 'GET' && (m = /^\/commits\/([^/]+)\/status$/.exec(rest))) {
        const sha = decodeURIComponent(m[1]);
        // the combined status holds the latest status per context, without `creator` (simple-commit-status)
        const latest = new Map<string, FakeStatus>();
        for (const s of fake.statuses.get(sha) ?? []) latest.set(s.context, s);
        const statuses = [...latest.values()].map(({ creator: _creator, ...s }) => s);
        const state = statuses.some((s) => s.state === 'failure' || s.state === 'error')
          ? 'failure'
          : statuses.some((s) => s.state === 'pending') || !statuses.length
            ? 'pending'
            : 'success';
        return send(res, 200, {
          state,
          sha,
          total_count: statuses.length,
          statuses: statuses.map((s, i) => ({
            id: i + 1,
            ...s,
            target_url: s.target_url ?? null,
            created_at: s.updated_at,
            updated_at: s.updated_at,
          })),
        });
      }
      if (req.method === 'GET' && (m = /^\/commits\/([^/]+)\/statuses$/.exec(rest))) {
        // GitHub: every status, newest first, each with its `creator`; paginated (per_page ≤ 100)
        const all = [...(fake.statuses.get(decodeURIComponent(m[1])) ?? [])].reverse();
        const perPage = Math.min(100, Number(u.searchParams.get('per_page') ?? 30));
        const page = Math.max(1, Number(u.searchParams.get('page') ?? 1));
        const slice = all.slice((page - 1) * perPage, page * perPage);
        const lastPage = Math.max(1, Math.ceil(all.length / perPage));
        const headers: Record<string, string> = {};
        const base = (fake as unknown as FakeGitHub).url;
        if (page < lastPage)
          headers.link = `<${base}${u.pathname}?per_page=${perPage}&page=${page + 1}>; rel="next", <${base}${u.pathname}?per_page=${perPage}&page=${lastPage}>; rel="last"`;
        return sendWith(
          res,
          200,
          slice.map((s, i) => ({
            id: all.length - ((page - 1) * perPage + i),
            ...s,
            target_url: s.target_url ?? null,
            created_at: s.updated_at,
            creator: s.creator === undefined ? CI_CREATOR : s.creator,
          })),
          headers,
        );
      }
      if (req.method === 'GET' && (m = /^\/commits\/([^/]+)\/check-runs$/.exec(rest))) {
        const name = u.searchParams.get('check_name');
        const runs = (fake.checkRuns.get(decodeURIComponent(m[1])) ?? []).filter(
          (r) => !name || r.name === name,
        );
        return send(res, 200, {
          total_count: runs.length,
          check_runs: runs.map((r, i) => ({
            id: i + 1,
            head_sha: m![1],
            ...r,
            app: r.app === undefined ? CI_APP : r.app,
          })),
        });
      }
      if (req.method === 'POST' && (m = /^\/statuses\/([0-9a-f]{40})$/.exec(rest))) {
        let parsed: Record<string, string>;
        try {
          parsed = JSON.parse(body);
        } catch {
          return send(res, 400, { message: 'Problems parsing JSON' });
        }
        if (!['success', 'failure', 'error', 'pending'].includes(parsed.state))
          return send(res, 422, { message: 'Validation Failed' });
        const posted: PostedStatus = {
          sha: m[1],
          state: parsed.state,
          context: parsed.context ?? 'default',
          description: parsed.description ?? '',
          target_url: parsed.target_url,
          authorization,
        };
        fake.posted.push(posted);
        fake.addStatus(m[1], {
          context: posted.context,
          state: posted.state as FakeStatus['state'],
          description: posted.description,
          creator: PIPELINE_CREATOR,
        });
        return send(res, 201, { id: fake.posted.length, ...posted });
      }
      // --- git refs + compare (Odoo.sh target) ---
      const ancestors = (sha: string): string[] => {
        const out: string[] = [];
        for (let c: string | undefined = fake.commits.get(sha); c !== undefined; c = fake.commits.get(c))
          out.push(c);
        return out;
      };
      const fastForward = (from: string, to: string) => from === to || ancestors(to).includes(from);
      if (req.method === 'GET' && (m = /^\/git\/ref\/heads\/(.+)$/.exec(decodeURIComponent(rest)))) {
        const branch = m[1]; // Octokit sends `heads%2F<branch>`, as GitHub accepts
        const sha = fake.refs.get(branch);
        if (!sha) return send(res, 404, { message: 'Not Found' });
        return send(res, 200, { ref: `refs/heads/${branch}`, object: { sha, type: 'commit' } });
      }
      if (req.method === 'PATCH' && (m = /^\/git\/refs\/heads\/(.+)$/.exec(decodeURIComponent(rest)))) {
        const branch = m[1];
        let parsed: { sha?: string; force?: boolean };
        try {
          parsed = JSON.parse(body);
        } catch {
          return send(res, 400, { message: 'Problems parsing JSON' });
        }
        const from = fake.refs.get(branch);
        if (!from) return send(res, 422, { message: 'Reference does not exist' });
        if (!parsed.sha || !fake.commits.has(parsed.sha))
          return send(res, 422, { message: 'Object does not exist' });
        if (!parsed.force && !fastForward(from, parsed.sha))
          return send(res, 422, { message: 'Update is not a fast forward' });
        fake.refs.set(branch, parsed.sha);
        fake.refUpdates.push({ branch, from, to: parsed.sha, force: !!parsed.force });
        return send(res, 200, { ref: `refs/heads/${branch}`, object: { sha: parsed.sha, type: 'commit' } });
      }
      if (req.method === 'POST' && rest === '/git/refs') {
        let parsed: { ref?: string; sha?: string };
        try {
          parsed = JSON.parse(body);
        } catch {
          return send(res, 400, { message: 'Problems parsing JSON' });
        }
        const branch = /^refs\/heads\/(.+)$/.exec(parsed.ref ?? '')?.[1];
        if (!branch || !parsed.sha || !fake.commits.has(parsed.sha))
          return send(res, 422, { message: 'Validation Failed' });
        if (fake.refs.has(branch)) return send(res, 422, { message: 'Reference already exists' });
        fake.refs.set(branch, parsed.sha);
        fake.refUpdates.push({ branch, to: parsed.sha, force: false });
        return send(res, 201, { ref: parsed.ref, object: { sha: parsed.sha, type: 'commit' } });
      }
      if (req.method === 'GET' && (m = /^\/compare\/([0-9a-f]{40})\.\.\.([0-9a-f]{40})$/.exec(rest))) {
        const [base, head] = [m[1], m[2]];
        if (!fake.commits.has(base) || !fake.commits.has(head))
          return send(res, 404, { message: 'Not Found' });
        const up = ancestors(head);
        const down = ancestors(base);
        const status =
          base === head
            ? 'identical'
            : up.includes(base)
              ? 'ahead'
              : down.includes(head)
                ? 'behind'
                : 'diverged';
        const common = [base, ...down].find((c) => c === head || up.includes(c));
        const aheadBy = common === undefined ? up.length + 1 : [head, ...up].indexOf(common);
        const behindBy = common === undefined ? down.length + 1 : [base, ...down].indexOf(common);
        return send(res, 200, {
          status,
          ahead_by: aheadBy,
          behind_by: behindBy,
          total_commits: aheadBy,
          commits: [],
          files: [],
        });
      }
      if (req.method === 'GET' && (m = /^\/contents\/(.+)$/.exec(rest))) {
        const path = decodeURIComponent(m[1]);
        const ref = u.searchParams.get('ref') ?? '';
        const content = fake.files.get(`${ref}:${path}`);
        // a directory: GitHub answers the list of its entries (an array), not a file
        const inside = [...fake.files.keys()].filter((k) => k.startsWith(`${ref}:${path}/`));
        if (content === undefined && inside.length)
          return send(
            res,
            200,
            inside.map((k) => ({
              type: 'file',
              name: k.slice(ref.length + path.length + 2),
              path: k.slice(ref.length + 1),
            })),
          );
        if (content === undefined) return send(res, 404, { message: 'Not Found' });
        return send(res, 200, {
          type: 'file',
          encoding: 'base64',
          name: path,
          path,
          content: Buffer.from(content).toString('base64'),
        });
      }
      return send(res, 404, { message: 'Not Found' });
    })().catch((err) => send(res, 500, { message: String(err) }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return Object.assign(fake, {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  }) as FakeGitHub;
}
