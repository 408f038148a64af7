/**
 * Slack interactive buttons as a second way to decide (POST /api/slack/interactions) through the
 * embedded host: Slack request signing (v0, 5-minute window), the clicking user must be the token's
 * approver, one decision per link shared with the link flow, the answer back through response_url.
 * A small node:http server stands in for Slack's response_url endpoint.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { LocalHost } from '../../local/host';
import { approvalLink, signingKeys } from '../../shared/domain/approval-token';
import '../../functions/approvals';
import {
  allowedResponseUrl,
  approvalButtons,
  slackSignature,
  verifySlackSignature,
} from '../../functions/slackInteractions';
import '../../functions/slackInteractions';
import { approvalModal } from '../../functions/slack-buttons';
import { probeRequests, startApprovalHost, type ProbeOutput, PROBE_TEST_MS } from '../support/approval-probe';

jest.setTimeout(PROBE_TEST_MS);

interface Capture {
  url: string;
  posts: Array<{ path: string; body: { text?: string; response_type?: string } }>;
  stop(): Promise<void>;
}
async function startCapture(): Promise<Capture> {
  const posts: Capture['posts'] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      posts.push({
        path: req.url ?? '',
        body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Capture['posts'][number]['body'],
      });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    posts,
    stop: () => new Promise((r) => server.close(() => r())),
  };
}

const signingSecret = randomBytes(24).toString('hex');
const approvalKey = randomBytes(36).toString('base64url');

describe('Slack request signing (pure)', () => {
  const body = 'payload=%7B%7D';
  const now = 1_800_000_000;
  const ts = String(now);
  it('accepts a correct signature inside the window, refuses everything else', () => {
    const sig = slackSignature(signingSecret, ts, body);
    expect(sig).toMatch(/^v0=[0-9a-f]{64}$/);
    expect(verifySlackSignature(signingSecret, ts, sig, body, now)).toEqual({ ok: true });
    expect(verifySlackSignature(signingSecret, ts, sig, body, now + 300)).toEqual({ ok: true });
    expect(verifySlackSignature(signingSecret, ts, sig, body, now + 301)).toMatchObject({
      ok: false,
      why: expect.stringMatching(/5 minutes/),
    });
    expect(verifySlackSignature(signingSecret, ts, sig, body, now - 301)).toMatchObject({ ok: false }); // from the future
    expect(verifySlackSignature(signingSecret, ts, sig, body + 'x', now)).toMatchObject({
      ok: false,
      why: expect.stringMatching(/does not match/),
    });
    expect(verifySlackSignature('another-secret', ts, sig, body, now)).toMatchObject({ ok: false });
    expect(verifySlackSignature(signingSecret, String(now + 1), sig, body, now)).toMatchObject({ ok: false }); // timestamp is signed
    for (const [t, s] of [
      [null, sig],
      ['', sig],
      ['12ab', sig],
      [ts, null],
      [ts, 'v1=' + sig.slice(3)],
      [ts, sig.slice(0, -2)],
      [ts, sig.toUpperCase()],
    ] as const) {
      expect(verifySlackSignature(signingSecret, t, s, body, now).ok).toBe(false);
    }
  });

  it('response_url only to Slack, or to the configured Slack API origin', () => {
    expect(allowedResponseUrl('https://hooks.slack.com/actions/T1/1/abc', undefined)).toBeDefined();
    expect(allowedResponseUrl('http://hooks.slack.com/actions/T1/1/abc', undefined)).toBeUndefined();
    expect(allowedResponseUrl('https://hooks.slack.com.evil.example/x', undefined)).toBeUndefined();
    expect(allowedResponseUrl('http://127.0.0.1:9/x', 'http://127.0.0.1:9/api')).toBeDefined();
    expect(allowedResponseUrl('http://127.0.0.1:10/x', 'http://127.0.0.1:9/api')).toBeUndefined();
    expect(allowedResponseUrl('not a url', undefined)).toBeUndefined();
  });

  it('approvalButtons carries the token; Approve opens the modal (no confirm dialog), Reject keeps its confirm', () => {
    const b = approvalButtons({ approver: 'alice', action: 'approval', token: 'p.s', version: '1.4.0' });
    expect(b.elements.map((e) => e.action_id)).toEqual(['approval-approve', 'approval-reject']);
    expect(b.elements.every((e) => e.value === 'p.s')).toBe(true);
    expect(b.elements[0].confirm).toBeUndefined();
    expect(b.elements[1].confirm?.title.text).toBe('Reject 1.4.0 for PROD?');
  });

  it('approvalModal: checklist (Approve only), the typed word, Slack’s 24-character title/submit/close', () => {
    const token = 'p.s';
    const long = approvalModal({
      approver: 'alice',
      action: 'approve',
      token,
      version: '1.4.0-rc.123456789012345',
    });
    const rb = approvalModal({
      approver: 'alice',
      action: 'rollback',
      token,
      version: '1.4.0',
      previousVersion: '1.3.0',
    });
    for (const v of [long, rb] as Array<Record<string, { text: string }>>)
      for (const k of ['title', 'submit', 'close']) expect(v[k].text.length).toBeLessThanOrEqual(24);
    expect(long).toMatchObject({
      type: 'modal',
      callback_id: 'approval-modal-approve',
      private_metadata: token,
    });
    expect(JSON.stringify(long)).toContain('"check_backup"');
    expect(JSON.stringify(long)).toContain('Type APPROVE');
    expect(rb).toMatchObject({ callback_id: 'approval-modal-rollback' });
    expect(JSON.stringify(rb)).not.toContain('checkboxes');
    expect(JSON.stringify(rb)).toContain('Type ROLLBACK');
    expect(JSON.stringify(rb)).toContain('1.3.0 is started again');
  });

  it('approvalButtons names an Odoo.sh move (no rollback button for it) and refuses a token Slack could not carry', () => {
    const odoosh = {
      approver: 'alice',
      token: 'p.s',
      version: '1.4.0',
      odoosh: { stage: 'production', branch: 'main' },
    };
    const b = approvalButtons({ ...odoosh, action: 'approval' });
    expect(b.elements.map((e) => e.confirm?.title.text)).toEqual([
      undefined,
      'Reject the Odoo.sh production move of 1.4.0 to main?',
    ]);
    expect(() => approvalButtons({ ...odoosh, action: 'rollback' })).toThrow(/no rollback button/);
    expect(
      approvalButtons({
        approver: 'alice',
        action: 'rollback',
        token: 'p.s',
        version: '1.4.0',
        previousVersion: '1.3.0',
      }).elements[0],
    ).toMatchObject({ action_id: 'approval-rollback', value: 'p.s' });
    expect(() =>
      approvalButtons({ approver: 'alice', action: 'approval', token: 'x'.repeat(2001), version: '1.4.0' }),
    ).toThrow(/does not fit a Slack button value/);
  });
});

describe('Slack interactive buttons (embedded host)', () => {
  let dir: string;
  let host: LocalHost;
  let slack: Capture;
  let elsewhere: Capture;

  beforeAll(
    async () => {
      slack = await startCapture();
      elsewhere = await startCapture();
      // approvers by Slack user id (the payloads below use U + the name in capitals)
      ({ host, dir } = await startApprovalHost('approvals-slack-', {
        APPROVAL_SIGNING_KEY: approvalKey,
        SLACK_SIGNING_SECRET: signingSecret,
        SLACK_API_URL: `${slack.url}/api`,
        APPROVERS: 'alice:slack=UALICE, bob:slack=UBOB, carol:slack=UCAROL',
      }));
    },
    Math.max(90_000, PROBE_TEST_MS),
  );
  afterAll(async () => {
    await host?.stop();
    await slack?.stop();
    await elsewhere?.stop();
    delete process.env.SLACK_SIGNING_SECRET;
    rmSync(dir, { recursive: true, force: true });
  });

  const { stillPending, request, completed } = probeRequests({
    host: () => host,
    key: () => signingKeys({ APPROVAL_SIGNING_KEY: approvalKey })[0],
    idFill: 'c',
  });

  function payload(o: {
    token: string;
    actionId?: string;
    user?: string;
    userName?: string;
    responseUrl?: string;
    type?: string;
  }): string {
    const p = {
      type: o.type ?? 'block_actions',
      user: {
        id: `U${(o.user ?? 'alice').toUpperCase()}`,
        username: o.userName ?? o.user ?? 'alice',
        name: o.userName ?? o.user ?? 'alice',
      },
      actions: [{ action_id: o.actionId ?? 'approval-approve', value: o.token, type: 'button' }],
      response_url: o.responseUrl ?? `${slack.url}/actions/T1/1/xyz`,
    };
    return new URLSearchParams({ payload: JSON.stringify(p) }).toString();
  }
  async function send(body: string, o: { ts?: number; secret?: string; signature?: string | null } = {}) {
    const ts = String(o.ts ?? Math.floor(Date.now() / 1000));
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': ts,
      'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
    };
    const sig = o.signature === undefined ? slackSignature(o.secret ?? signingSecret, ts, body) : o.signature;
    if (sig !== null) headers['x-slack-signature'] = sig;
    const res = await fetch(`${host.baseUrl}/api/slack/interactions`, { method: 'POST', headers, body });
    return { status: res.status, text: await res.text() };
  }

  it('a signed Approve click decides nothing (it would open the modal; without SLACK_BOT_TOKEN it says to use the link)', async () => {
    const r = await request();
    const res = await send(payload({ token: r.tokens[0] }));
    expect(res.status).toBe(200);
    expect(slack.posts[slack.posts.length - 1].body.text).toContain('SLACK_BOT_TOKEN');
    await new Promise((ok) => setTimeout(ok, 300));
    expect(await stillPending(r.id, r.pending[0].nonce)).toBe(true);
  });

  it('a signed Reject click by the approver decides, and the user is told through response_url', async () => {
    const r = await request();
    const before = slack.posts.length;
    const res = await send(payload({ token: r.tokens[0], actionId: 'approval-reject' }));
    expect(res.status).toBe(200);
    const s = await completed(r.id);
    const out = s.output as ProbeOutput;
    expect(out.outcome).toBe('Rejected');
    expect(out.decisions[0]).toMatchObject({
      approver: 'alice',
      action: 'reject',
      nonce: r.pending[0].nonce,
      ip: 'slack',
      comment: expect.stringContaining('UALICE'),
    });
    const told = slack.posts.slice(before);
    expect(told).toHaveLength(1);
    expect(told[0].body.response_type).toBe('ephemeral');
    expect(told[0].body.text).toContain('Rejection sent');

    // the same link (page) is now used; the same click again is refused
    const page = await fetch(approvalLink(host.baseUrl, r.tokens[0]));
    expect(page.status).toBe(409);
    const again = await send(payload({ token: r.tokens[0], actionId: 'approval-reject' }));
    expect(again.status).toBe(200);
    expect(slack.posts[slack.posts.length - 1].body.text).toMatch(/already used/);
  });

  it('someone else clicking the approver’s button decides nothing', async () => {
    const r = await request();
    await send(payload({ token: r.tokens[0], user: 'mallory' }));
    expect(slack.posts[slack.posts.length - 1].body.text).toContain('This button is for alice');
    expect(await stillPending(r.id, r.pending[0].nonce)).toBe(true);
    // Slack names can be changed by their owner: mallory renamed to "alice" is still mallory (issue #15)
    await send(payload({ token: r.tokens[0], user: 'mallory', userName: 'alice' }));
    expect(slack.posts[slack.posts.length - 1].body.text).toContain('This button is for alice');
    expect(await stillPending(r.id, r.pending[0].nonce)).toBe(true);
    // bob's reject button works for bob
    await send(payload({ token: r.tokens[1], user: 'bob', actionId: 'approval-reject' }));
    const s = await completed(r.id);
    expect((s.output as ProbeOutput).outcome).toBe('Rejected');
  });

  it('refused before anything is read: bad or missing signature, old or future timestamp', async () => {
    const r = await request();
    const body = payload({ token: r.tokens[0] });
    const now = Math.floor(Date.now() / 1000);
    expect((await send(body, { secret: 'not-the-secret' })).status).toBe(401);
    expect((await send(body, { signature: null })).status).toBe(401);
    const old = await send(body, { ts: now - 6 * 60 }); // a captured request replayed later
    expect(old.status).toBe(401);
    expect(old.text).toContain('5 minutes');
    expect((await send(body, { ts: now + 6 * 60 })).status).toBe(401);
    expect(await stillPending(r.id, r.pending[0].nonce)).toBe(true);
  });

  it('bad payloads get clear answers; a button cannot do what its link cannot', async () => {
    const r = await request({ action: 'rollback', approvers: ['alice'] });
    expect((await send('payload=not-json')).status).toBe(400);
    expect((await send('nothing=here')).status).toBe(400);
    const other = await send(payload({ token: r.tokens[0], type: 'view_submission' }));
    expect(other.status).toBe(200);
    expect(other.text).toContain('Ignored');
    await send(payload({ token: r.tokens[0], actionId: 'approval-approve' }));
    expect(slack.posts[slack.posts.length - 1].body.text).toContain('cannot approve');
    await send(payload({ token: r.tokens[0].slice(0, -3) + 'AAA' }));
    expect(slack.posts[slack.posts.length - 1].body.text).toContain('not valid');
    expect(await stillPending(r.id, r.pending[0].nonce)).toBe(true);
  });

  it('response_url outside Slack is never called', async () => {
    const r = await request();
    await send(payload({ token: r.tokens[0], user: 'mallory', responseUrl: `${elsewhere.url}/steal` }));
    expect(elsewhere.posts).toHaveLength(0);
    expect(await stillPending(r.id, r.pending[0].nonce)).toBe(true);
  });

  it('without SLACK_SIGNING_SECRET the endpoint is off (404), links keep working', async () => {
    const r = await request();
    delete process.env.SLACK_SIGNING_SECRET;
    try {
      expect((await send(payload({ token: r.tokens[0] }))).status).toBe(404);
      expect((await fetch(approvalLink(host.baseUrl, r.tokens[0]))).status).toBe(200);
    } finally {
      process.env.SLACK_SIGNING_SECRET = signingSecret;
    }
  });
});
