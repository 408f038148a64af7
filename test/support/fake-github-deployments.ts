/**
 * A node:http server speaking GitHub's Deployments API (create deployment, create deployment status,
 * list statuses) and the compare API, behind the real Octokit adapter (shared/adapters/github-deployments.ts).
 */
import { createServer, Server } from 'node:http';
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

export interface FakeGitHubDeployments {
  url: string;
  repository: string;
  token: string;
  deployments: FakeDeployment[];
  /** files changed per `base...head` */
  compares: Map<string, string[]>;
  failWith?: number;
  stop(): Promise<void>;
}

export async function startFakeGitHubDeployments(repository = 'acme/odoo-mta'): Promise<FakeGitHubDeployments> {
  const token = `ghs_test${Math.random().toString(36).slice(2)}`;
  const prefix = `/repos/${repository}`;
  const fake = { repository, token, deployments: [] as FakeDeployment[], compares: new Map<string, string[]>() } as FakeGitHubDeployments;
  const send = (res: import('node:http').ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (fake.failWith) return send(res, fake.failWith, { message: 'Server Error' });
      if (req.headers.authorization !== `token ${token}` && req.headers.authorization !== `Bearer ${token}`) return send(res, 401, { message: 'Bad credentials' });
      const u = new URL(req.url ?? '/', 'http://x');
      const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>) : {};
      if (req.method === 'POST' && u.pathname === `${prefix}/deployments`) {
        if (typeof body.ref !== 'string') return send(res, 422, { message: 'ref is required' });
        const d: FakeDeployment = { id: fake.deployments.length + 1001, ref: body.ref, environment: String(body.environment ?? 'production'), description: body.description as string, payload: body.payload, production_environment: body.production_environment as boolean, statuses: [] };
        fake.deployments.push(d);
        return send(res, 201, { id: d.id, ref: d.ref, environment: d.environment });
      }
      let m = /^\/repos\/[^/]+\/[^/]+\/deployments\/(\d+)\/statuses$/.exec(u.pathname);
      if (m && u.pathname.startsWith(prefix)) {
        const d = fake.deployments.find((x) => x.id === Number(m![1]));
        if (!d) return send(res, 404, { message: 'Not Found' });
        if (req.method === 'POST') {
          const allowed = ['error', 'failure', 'inactive', 'in_progress', 'queued', 'pending', 'success'];
          if (!allowed.includes(String(body.state))) return send(res, 422, { message: 'invalid state' });
          if (typeof body.description === 'string' && body.description.length > 140) return send(res, 422, { message: 'description is too long (maximum is 140 characters)' });
          d.statuses.push({ state: String(body.state), description: body.description as string, environment_url: body.environment_url as string, log_url: body.log_url as string });
          return send(res, 201, { id: d.statuses.length, state: body.state });
        }
        return send(res, 200, [...d.statuses].reverse());
      }
      m = /^\/repos\/[^/]+\/[^/]+\/compare\/(.+)$/.exec(u.pathname);
      if (m && req.method === 'GET') {
        const files = fake.compares.get(decodeURIComponent(m[1]));
        if (!files) return send(res, 404, { message: 'Not Found' });
        return send(res, 200, { status: 'ahead', files: files.map((filename) => ({ filename, status: 'modified' })) });
      }
      send(res, 404, { message: 'Not Found' });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.stop = () => new Promise<void>((r) => server.close(() => r()));
  return fake;
}
