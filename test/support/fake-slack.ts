/**
 * A node:http server speaking Slack's posting APIs, behind the product's real adapter
 * (shared/adapters/slack.ts):
 *  - an incoming webhook (`POST /hooks/...`, answers `ok` text);
 *  - the Web API over HTTP, Bearer token checked on every call (`{ ok: false, error: 'invalid_auth' }`
 *    otherwise), answers in Slack's shapes: `POST /api/chat.postMessage` → `{ ok, channel, ts }`
 *    (`channel_not_found` without a channel), `POST /api/chat.update` → `{ ok, channel, ts }`
 *    (`message_not_found` for an unknown ts, `cant_update_message` for a webhook post),
 *    `POST /api/views.open` → `{ ok, view }` (`invalid_arguments` without trigger_id / view,
 *    `expired_trigger_id` for one it did not issue — see `issueTrigger()`).
 * It records what each party received: `posts` (everything, in order), `inbox(userId)` (what one person
 * received privately: a message whose channel is their user id), `channelPosts()`, `updates`, `views`.
 * The outbox (`GET /outbox` HTML, `GET /outbox.json`) lists per recipient what they received with the
 * links clickable, so a person trying the demo can open their own link (`decorate` can wrap each link,
 * e.g. in the embedded host's local sign-in as that recipient).
 */
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';

export interface SlackPost {
  via: 'webhook' | 'api';
  body: Record<string, unknown>;
  authorization?: string;
  /** Web API posts: where it landed */
  channel?: string;
  ts?: string;
}

export interface FakeSlack {
  url: string;
  webhookUrl: string;
  apiUrl: string;
  token: string;
  posts: SlackPost[];
  /** chat.update calls, in order (`channel`, `ts`, the new body) */
  updates: Array<{ channel: string; ts: string; body: Record<string, unknown> }>;
  /** views.open calls, in order */
  views: Array<{ trigger_id: string; view: Record<string, unknown> }>;
  /** what one Slack user received privately (messages sent to their user id), oldest first */
  inbox(userId: string): SlackPost[];
  /** messages to channels (not to a user id), webhook posts included */
  channelPosts(): SlackPost[];
  /** a trigger_id as Slack puts in an interaction payload (views.open accepts only these) */
  issueTrigger(): string;
  /** the outbox page: what each recipient received, links clickable */
  outboxUrl: string;
  /** rewrite a link shown in the outbox for its recipient (e.g. sign in as them first) */
  decorate?: (userId: string, url: string) => string;
  /** answer every request with this HTTP status */
  failWith?: number;
  /** Web API answers { ok: false, error } */
  apiError?: string;
  stop(): Promise<void>;
}

const USER = /^[UW][A-Z0-9]{2,20}$/;
const esc = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );

/** Every link `<url|label>` of a Block Kit message (mrkdwn), in order. */
function linksOf(body: Record<string, unknown>): Array<{ url: string; label: string }> {
  const out: Array<{ url: string; label: string }> = [];
  for (const m of JSON.stringify(body.blocks ?? body.text ?? '').matchAll(/<(https?:[^|>]+)\|([^>]*)>/g))
    out.push({ url: m[1], label: m[2] });
  return out;
}

export async function startFakeSlack(): Promise<FakeSlack> {
  const token = `xoxb-test-${randomBytes(8).toString('hex')}`;
  const hookPath = `/hooks/T000/B000/${randomBytes(8).toString('hex')}`;
  const triggers = new Set<string>();
  let seq = 0;
  const fake = { posts: [], updates: [], views: [], token } as unknown as FakeSlack;
  fake.inbox = (userId) => fake.posts.filter((p) => p.via === 'api' && p.channel === userId);
  fake.channelPosts = () => fake.posts.filter((p) => p.via === 'webhook' || !USER.test(p.channel ?? ''));
  fake.issueTrigger = () => {
    const t = `${Date.now()}.${randomBytes(6).toString('hex')}`;
    triggers.add(t);
    return t;
  };

  function outbox(): Record<
    string,
    Array<{ ts?: string; text: unknown; links: Array<{ url: string; label: string }> }>
  > {
    const by: Record<
      string,
      Array<{ ts?: string; text: unknown; links: Array<{ url: string; label: string }> }>
    > = {};
    for (const p of fake.posts) {
      const who = p.via === 'webhook' ? '#channel (webhook)' : (p.channel ?? '?');
      (by[who] ??= []).push({ ts: p.ts, text: p.body.text, links: linksOf(p.body) });
    }
    return by;
  }

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'GET' && (req.url === '/outbox' || req.url === '/outbox.json')) {
        const by = outbox();
        if (req.url === '/outbox.json') {
          res.writeHead(200, { 'content-type': 'application/json' });
          return res.end(JSON.stringify(by, null, 2));
        }
        const sections = Object.entries(by).map(([who, msgs]) => {
          const items = msgs
            .map(
              (m) =>
                `<li>${esc(String(m.text ?? ''))}${m.links.map((l) => `<br><a href="${esc(USER.test(who) && fake.decorate ? fake.decorate(who, l.url) : l.url)}">${esc(l.label || l.url)}</a>`).join('')}</li>`,
            )
            .join('');
          return `<h2>${esc(who)}${USER.test(who) ? ' (private)' : ''}</h2><ul>${items}</ul>`;
        });
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        return res.end(
          `<!doctype html><meta charset="utf-8"><title>Fake Slack outbox</title><h1>What each recipient received</h1>${sections.join('')}`,
        );
      }
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
      const api = /^\/api\/([A-Za-z.]+)$/.exec(req.url ?? '');
      if (req.method === 'POST' && api) {
        const authorization = req.headers.authorization;
        const answer = (o: Record<string, unknown>) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(o));
        };
        if (authorization !== `Bearer ${token}`) return answer({ ok: false, error: 'invalid_auth' });
        if (fake.apiError) return answer({ ok: false, error: fake.apiError });
        switch (api[1]) {
          case 'chat.postMessage': {
            if (typeof body.channel !== 'string' || !body.channel)
              return answer({ ok: false, error: 'channel_not_found' });
            if (typeof body.text !== 'string' && !Array.isArray(body.blocks))
              return answer({ ok: false, error: 'no_text' });
            const ts = `${Math.floor(Date.now() / 1000)}.${String(++seq).padStart(6, '0')}`;
            // Slack answers a message to a user id with the id of the app's DM channel with them; this
            // fake keeps the user id so tests can read what each person received.
            fake.posts.push({ via: 'api', body, authorization, channel: body.channel, ts });
            return answer({ ok: true, channel: body.channel, ts, message: { text: body.text, ts } });
          }
          case 'chat.update': {
            const target = fake.posts.find((p) => p.ts === body.ts && p.channel === body.channel);
            if (!target) return answer({ ok: false, error: 'message_not_found' });
            if (target.via !== 'api') return answer({ ok: false, error: 'cant_update_message' });
            target.body = { ...target.body, text: body.text, blocks: body.blocks };
            fake.updates.push({ channel: String(body.channel), ts: String(body.ts), body });
            return answer({ ok: true, channel: body.channel, ts: body.ts, text: body.text });
          }
          case 'views.open': {
            if (typeof body.trigger_id !== 'string' || !body.view || typeof body.view !== 'object')
              return answer({ ok: false, error: 'invalid_arguments' });
            if (!triggers.delete(body.trigger_id)) return answer({ ok: false, error: 'expired_trigger_id' });
            fake.views.push({ trigger_id: body.trigger_id, view: body.view as Record<string, unknown> });
            return answer({
              ok: true,
              view: { id: `V${String(++seq).padStart(8, '0')}`, ...(body.view as Record<string, unknown>) },
            });
          }
          default:
            return answer({ ok: false, error: 'unknown_method' });
        }
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
  fake.outboxUrl = `${fake.url}/outbox`;
  fake.stop = () => new Promise<void>((r) => server.close(() => r()));
  return fake;
}
