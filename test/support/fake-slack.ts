/**
 * A node:http server speaking Slack's two posting APIs: an incoming webhook (`POST /hooks/...`, answers
 * `ok` text) and the Web API `POST /api/chat.postMessage` (Bearer token, answers `{ ok, ts }` or
 * `{ ok: false, error }`). Tests read back what was posted and can simulate outages.
 */
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';

export interface SlackPost {
  via: 'webhook' | 'api';
  body: Record<string, unknown>;
  authorization?: string;
}

export interface FakeSlack {
  url: string;
  webhookUrl: string;
  apiUrl: string;
  token: string;
  posts: SlackPost[];
  /** answer every request with this HTTP status */
  failWith?: number;
  /** Web API answers { ok: false, error } */
  apiError?: string;
  stop(): Promise<void>;
}

export async function startFakeSlack(): Promise<FakeSlack> {
  const token = `xoxb-test-${Math.random().toString(36).slice(2)}`;
  const hookPath = `/hooks/T000/B000/${Math.random().toString(36).slice(2)}`;
  const fake = { posts: [] as SlackPost[], token } as FakeSlack;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (fake.failWith) {
        res.writeHead(fake.failWith, { 'content-type': 'text/plain' });
        return res.end('unavailable');
      }
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      } catch {
        res.writeHead(400, { 'content-type': 'text/plain' });
        return res.end('invalid_payload');
      }
      if (req.method === 'POST' && req.url === hookPath) {
        if (typeof body.text !== 'string' && !Array.isArray(body.blocks)) {
          res.writeHead(400, { 'content-type': 'text/plain' });
          return res.end('no_text');
        }
        fake.posts.push({ via: 'webhook', body });
        res.writeHead(200, { 'content-type': 'text/plain' });
        return res.end('ok');
      }
      if (req.method === 'POST' && req.url === '/api/chat.postMessage') {
        const authorization = req.headers.authorization;
        res.writeHead(200, { 'content-type': 'application/json' });
        if (authorization !== `Bearer ${token}`) return res.end(JSON.stringify({ ok: false, error: 'invalid_auth' }));
        if (fake.apiError) return res.end(JSON.stringify({ ok: false, error: fake.apiError }));
        if (!body.channel) return res.end(JSON.stringify({ ok: false, error: 'channel_not_found' }));
        fake.posts.push({ via: 'api', body, authorization });
        return res.end(JSON.stringify({ ok: true, channel: body.channel, ts: `${Date.now() / 1000}` }));
      }
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  fake.url = `http://127.0.0.1:${port}`;
  fake.webhookUrl = `${fake.url}${hookPath}`;
  fake.apiUrl = `${fake.url}/api`;
  fake.stop = () => new Promise<void>((r) => server.close(() => r()));
  return fake;
}
