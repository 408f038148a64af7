/**
 * A node:http server speaking the subset of GitHub's REST API the intake uses, behind the real Octokit
 * adapter: combined status, statuses, check runs, commit status creation, contents (VERSION).
 * Tests set what GitHub "has" per commit and read back what the pipeline posted.
 */
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';

export interface FakeStatus {
  context: string;
  state: 'success' | 'failure' | 'error' | 'pending';
  description?: string | null;
  updated_at?: string;
}
export interface FakeCheckRun {
  name: string;
  status: 'queued' | 'in_progress' | 'completed';
  conclusion?: string | null;
  completed_at?: string | null;
  output?: { title?: string | null; summary?: string | null };
}
export interface PostedStatus {
  sha: string;
  state: string;
  context: string;
  description: string;
  target_url?: string;
  authorization?: string;
}

export interface FakeGitHub {
  url: string;
  repository: string;
  statuses: Map<string, FakeStatus[]>;
  checkRuns: Map<string, FakeCheckRun[]>;
  files: Map<string, string>; // key `${sha}:${path}`
  posted: PostedStatus[];
  requests: Array<{ method: string; path: string; authorization?: string }>;
  /** answer every request with this status (outage simulation) */
  failWith?: number;
  setCoverage(sha: string, description: string, state?: FakeStatus['state']): void;
  setVersion(sha: string, version: string): void;
  stop(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
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
    setCoverage(sha, description, state = 'success') {
      const list = (fake.statuses.get(sha) ?? []).filter((s) => s.context !== 'coverage');
      list.push({ context: 'coverage', state, description, updated_at: new Date().toISOString() });
      fake.statuses.set(sha, list);
    },
    setVersion(sha, version) {
      fake.files.set(`${sha}:VERSION`, version + '\n');
    },
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const u = new URL(req.url ?? '/', 'http://localhost');
      const authorization = req.headers.authorization;
      fake.requests.push({ method: req.method ?? 'GET', path: u.pathname + u.search, authorization });
      const body = await readBody(req);
      if (fake.failWith) return send(res, fake.failWith, { message: 'simulated outage' });
      if (!u.pathname.startsWith(prefix + '/')) return send(res, 404, { message: 'Not Found' });
      const rest = u.pathname.slice(prefix.length);
      let m: RegExpExecArray | null;
      if (req.method === 'GET' && (m = /^\/commits\/([^/]+)\/status$/.exec(rest))) {
        const sha = decodeURIComponent(m[1]);
        const statuses = fake.statuses.get(sha) ?? [];
        const state = statuses.some((s) => s.state === 'failure' || s.state === 'error') ? 'failure' : statuses.some((s) => s.state === 'pending') || !statuses.length ? 'pending' : 'success';
        return send(res, 200, { state, sha, total_count: statuses.length, statuses: statuses.map((s, i) => ({ id: i + 1, ...s, target_url: null, created_at: s.updated_at, updated_at: s.updated_at })) });
      }
      if (req.method === 'GET' && (m = /^\/commits\/([^/]+)\/statuses$/.exec(rest))) {
        return send(res, 200, fake.statuses.get(decodeURIComponent(m[1])) ?? []);
      }
      if (req.method === 'GET' && (m = /^\/commits\/([^/]+)\/check-runs$/.exec(rest))) {
        const name = u.searchParams.get('check_name');
        const runs = (fake.checkRuns.get(decodeURIComponent(m[1])) ?? []).filter((r) => !name || r.name === name);
        return send(res, 200, { total_count: runs.length, check_runs: runs.map((r, i) => ({ id: i + 1, head_sha: m![1], ...r })) });
      }
      if (req.method === 'POST' && (m = /^\/statuses\/([0-9a-f]{40})$/.exec(rest))) {
        let parsed: Record<string, string>;
        try {
          parsed = JSON.parse(body);
        } catch {
          return send(res, 400, { message: 'Problems parsing JSON' });
        }
        if (!['success', 'failure', 'error', 'pending'].includes(parsed.state)) return send(res, 422, { message: 'Validation Failed' });
        const posted: PostedStatus = { sha: m[1], state: parsed.state, context: parsed.context ?? 'default', description: parsed.description ?? '', target_url: parsed.target_url, authorization };
        fake.posted.push(posted);
        const list = (fake.statuses.get(m[1]) ?? []).filter((s) => s.context !== posted.context);
        list.push({ context: posted.context, state: posted.state as FakeStatus['state'], description: posted.description, updated_at: new Date().toISOString() });
        fake.statuses.set(m[1], list);
        return send(res, 201, { id: fake.posted.length, ...posted });
      }
      if (req.method === 'GET' && (m = /^\/contents\/(.+)$/.exec(rest))) {
        const path = decodeURIComponent(m[1]);
        const ref = u.searchParams.get('ref') ?? '';
        const content = fake.files.get(`${ref}:${path}`);
        if (content === undefined) return send(res, 404, { message: 'Not Found' });
        return send(res, 200, { type: 'file', encoding: 'base64', name: path, path, content: Buffer.from(content).toString('base64') });
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
