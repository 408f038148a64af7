/**
 * GitHub's Deployments API (create deployment, create deployment status, list statuses) and the compare
 * API's changed files, behind the real Octokit adapter (shared/adapters/github-deployments.ts).
 *
 * `deploymentsApi(state, repository)` is the protocol itself, mountable in another fake server (the
 * demo's fake GitHub, test/support/fake-github.ts, answers it too); `startFakeGitHubDeployments()` is a
 * node:http server of its own that also checks the token.
 */
import { createServer, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';

export interface FakeDeployment {
  id: number;
  ref: string;
  environment: string;
  description?: string;
  payload?: unknown;
  production_environment?: boolean;
  statuses: Array<{ state: string; description?: string; environment_url?: string; log_url?: string }>;
}

/** What the fake GitHub "has" for the Deployments API: read back by tests, set by them (`compares`). */
export interface DeploymentsState {
  deployments: FakeDeployment[];
  /** files changed per `base...head` */
  compares: Map<string, string[]>;
  /** commits per `base...head` (answered as `total_commits` / `ahead_by`, as GitHub does) */
  commitCounts?: Map<string, number>;
}

export interface FakeGitHubDeployments extends DeploymentsState {
  url: string;
  repository: string;
  token: string;
  failWith?: number;
  stop(): Promise<void>;
}

export interface ApiAnswer {
  status: number;
  body: unknown;
}

/**
 * The Deployments API routes of `repository` over `state`. The handler answers a request it owns and
 * returns undefined for any other (other routes, and a compare whose `base...head` is not in
 * `state.compares`), so the server mounting it can answer those itself.
 */
export function deploymentsApi(
  state: DeploymentsState,
  repository: string,
): (method: string, pathname: string, rawBody: string) => ApiAnswer | undefined {
  const prefix = `/repos/${repository}`;
  return (method, pathname, rawBody) => {
    if (!pathname.startsWith(prefix + '/')) return undefined;
    const parse = (): Record<string, unknown> | undefined => {
      if (!rawBody) return {};
      try {
        const v = JSON.parse(rawBody) as unknown;
        return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
      } catch {
        return undefined;
      }
    };
    if (method === 'POST' && pathname === `${prefix}/deployments`) {
      const body = parse();
      if (!body) return { status: 400, body: { message: 'Problems parsing JSON' } };
      if (typeof body.ref !== 'string') return { status: 422, body: { message: 'ref is required' } };
      const d: FakeDeployment = {
        id: state.deployments.length + 1001,
        ref: body.ref,
        environment: String(body.environment ?? 'production'),
        description: body.description as string,
        payload: body.payload,
        production_environment: body.production_environment as boolean,
        statuses: [],
      };
      state.deployments.push(d);
      return { status: 201, body: { id: d.id, ref: d.ref, environment: d.environment } };
    }
    let m = /^\/deployments\/(\d+)\/statuses$/.exec(pathname.slice(prefix.length));
    if (m && (method === 'POST' || method === 'GET')) {
      const d = state.deployments.find((x) => x.id === Number(m![1]));
      if (!d) return { status: 404, body: { message: 'Not Found' } };
      if (method === 'GET') return { status: 200, body: [...d.statuses].reverse() };
      const body = parse();
      if (!body) return { status: 400, body: { message: 'Problems parsing JSON' } };
      const allowed = ['error', 'failure', 'inactive', 'in_progress', 'queued', 'pending', 'success'];
      if (!allowed.includes(String(body.state))) return { status: 422, body: { message: 'invalid state' } };
      if (typeof body.description === 'string' && body.description.length > 140)
        return { status: 422, body: { message: 'description is too long (maximum is 140 characters)' } };
      d.statuses.push({
        state: String(body.state),
        description: body.description as string,
        environment_url: body.environment_url as string,
        log_url: body.log_url as string,
      });
      return { status: 201, body: { id: d.statuses.length, state: body.state } };
    }
    m = /^\/compare\/(.+)$/.exec(pathname.slice(prefix.length));
    if (m && method === 'GET') {
      const key = decodeURIComponent(m[1]);
      const files = state.compares.get(key);
      if (!files) return undefined;
      const commits = state.commitCounts?.get(key);
      return {
        status: 200,
        body: {
          status: 'ahead',
          ...(commits !== undefined ? { ahead_by: commits, behind_by: 0, total_commits: commits } : {}),
          files: files.map((filename) => ({ filename, status: 'modified' })),
        },
      };
    }
    return undefined;
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export async function startFakeGitHubDeployments(
  repository = 'acme/odoo-mta',
): Promise<FakeGitHubDeployments> {
  const token = `ghs_test${Math.random().toString(36).slice(2)}`;
  const fake = {
    repository,
    token,
    deployments: [] as FakeDeployment[],
    compares: new Map<string, string[]>(),
  } as FakeGitHubDeployments;
  const api = deploymentsApi(fake, repository);
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (fake.failWith) return sendJson(res, fake.failWith, { message: 'Server Error' });
      if (req.headers.authorization !== `token ${token}` && req.headers.authorization !== `Bearer ${token}`)
        return sendJson(res, 401, { message: 'Bad credentials' });
      const u = new URL(req.url ?? '/', 'http://x');
      const answer = api(req.method ?? 'GET', u.pathname, Buffer.concat(chunks).toString('utf8')) ?? {
        status: 404,
        body: { message: 'Not Found' },
      };
      sendJson(res, answer.status, answer.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.stop = () => new Promise<void>((r) => server.close(() => r()));
  return fake;
}
