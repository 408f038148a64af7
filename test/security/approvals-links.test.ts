/**
 * Approval links through the embedded host (real HTTP, real durable-functions client and orchestrator
 * handlers, Azurite for the used-link markers). A small test orchestrator keeps the approval contract
 * the way deployProd does: it publishes pendingApprovals in its custom status, waits for
 * `approval-decision` events, accepts only pending nonces and records every decision in its output.
 */
import { rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { BlobServiceClient } from '@azure/storage-blob';
import type { LocalHost } from '../../local/host';
import {
  approvalLink,
  signApprovalToken,
  signingKeys,
  type SigningKey,
} from '../../shared/domain/approval-token';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { clientIp, crossOriginProblem, safely, type WaitingStatus } from '../../functions/approvals';
import '../../functions/approvals';
import {
  probeRequests,
  startApprovalHost,
  waitFor,
  type ProbeOutput,
  PROBE_TEST_MS,
} from '../support/approval-probe';
import { approversSetting, cookieOf, type Who } from '../support/identities';

jest.setTimeout(PROBE_TEST_MS);

const keyA = randomBytes(36).toString('base64url');
const keyB = randomBytes(36).toString('base64url');
const SLACKBOT = 'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)';

describe('approval links (embedded host)', () => {
  let dir: string;
  let host: LocalHost;

  beforeAll(
    async () => {
      ({ host, dir } = await startApprovalHost('approvals-', {
        APPROVAL_SIGNING_KEY: keyA,
        APPROVERS: approversSetting('alice', 'bob', 'carol'),
      }));
    },
    Math.max(90_000, PROBE_TEST_MS),
  );
  afterAll(async () => {
    await host?.stop();
    delete process.env.APPROVAL_SIGNING_KEY_PREVIOUS;
    rmSync(dir, { recursive: true, force: true });
  });

  const keys = (): SigningKey[] =>
    signingKeys({
      APPROVAL_SIGNING_KEY: process.env.APPROVAL_SIGNING_KEY,
      APPROVAL_SIGNING_KEY_PREVIOUS: process.env.APPROVAL_SIGNING_KEY_PREVIOUS,
    });

  /** Start a probe deploy; resolve once it waits, with one signed link per approver. */
  const { statusOf, stillPending, request, completed } = probeRequests({
    host: () => host,
    key: () => keys()[0],
    idFill: '0',
  });

  /** What a browser does: GET the page, read the form's hidden fields. */
  async function openPage(
    link: string,
  ): Promise<{ res: Response; html: string; fields: Record<string, string> }> {
    const res = await fetch(link, { headers: { accept: 'text/html' } });
    const html = await res.text();
    const fields: Record<string, string> = {};
    for (const m of html.matchAll(/<input type="hidden" name="([a-z_]+)" value="([^"]*)">/g))
      fields[m[1]] = m[2];
    return { res, html, fields };
  }

  const fullApproval = {
    check_uat: 'yes',
    check_backup: 'yes',
    check_rollback: 'yes',
    confirm: 'APPROVE',
    decision: 'approve',
  };
  /** the approver a link was issued to, signed in (the page decides only for them: test/security/approvals-identity.test.ts) */
  const asApproverOf = (link: string): Record<string, string> => {
    try {
      const a = (
        JSON.parse(Buffer.from(link.split('/').pop()!.split('.')[0], 'base64url').toString('utf8')) as {
          a?: string;
        }
      ).a as Who;
      return { cookie: cookieOf(host.keys.masterKey, a) };
    } catch {
      return {};
    }
  };
  async function post(
    link: string,
    form: Record<string, string>,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; html: string }> {
    const res = await fetch(link, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'sec-fetch-site': 'same-origin',
        origin: 'null',
        'user-agent': 'Mozilla/5.0 (iPhone) test',
        'x-forwarded-for': '203.0.113.9:51234, 10.0.0.1',
        ...asApproverOf(link),
        ...headers,
      },
      body: new URLSearchParams(form).toString(),
    });
    return { status: res.status, html: await res.text() };
  }
  async function decide(link: string, form: Record<string, string>, headers?: Record<string, string>) {
    const { fields } = await openPage(link);
    return post(link, { ...fields, ...form }, headers);
  }

  const usedMarker = async (nonce: string) => {
    const svc = BlobServiceClient.fromConnectionString(host.blobConnectionString!);
    return svc.getContainerClient('ledger').getBlockBlobClient(`approvals/used/${nonce}.json`).exists();
  };

  it('GET renders what is being approved, with the checklist and safe headers', async () => {
    const r = await request();
    const { res, html, fields } = await openPage(r.links[0]);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("form-action 'self'");
    expect(csp).not.toContain('unsafe-inline');
    for (const text of [
      '1.4.0',
      'carol',
      'Alice Martin', // the link's approver by the name people know (APPROVERS), not the id
      'Tested on UAT?',
      'Backup location ready?',
      'Rollback plan documented?',
      'Type APPROVE',
      'deployed, healthy', // the UAT result in words
      r.id,
    ])
      expect(html).toContain(text);
    expect(html).toContain('monthly release &lt;b&gt;bold&lt;/b&gt;'); // escaped, not markup
    expect(html).not.toMatch(/<(?:link|img)\b|src="http|@import/); // no external assets
    expect(fields.csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(fields.csrf_nonce).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it("GET-only never approves: Slack's link expander (GET + HEAD, Slackbot user agent) decides nothing", async () => {
    const r = await request();
    for (const method of ['HEAD', 'GET', 'GET', 'HEAD']) {
      const res = await fetch(r.links[0], { method, headers: { 'user-agent': SLACKBOT, accept: '*/*' } });
      expect(res.status).toBe(200);
      if (method === 'HEAD') expect(await res.text()).toBe('');
    }
    const s = (await statusOf(r.id))!;
    expect(s.runtimeStatus).toBe('Running');
    expect((s.customStatus as WaitingStatus).step).toBe('awaiting-approval');
    expect(await stillPending(r.id, r.pending[0].nonce)).toBe(true);
    expect(await usedMarker(r.pending[0].nonce)).toBe(false);
    // and the link still works afterwards for the human
    expect((await decide(r.links[0], fullApproval)).status).toBe(200);
  });

  it('approve: the decision reaches the orchestration with who, when, comment, IP and user agent; a replay is refused', async () => {
    const r = await request();
    const done = await decide(r.links[0], { ...fullApproval, comment: 'checked the release notes' });
    expect(done.status).toBe(200);
    expect(done.html).toContain('Approved');
    expect(done.html).toMatch(/Approval recorded for deploy .* \(1 of 1 approvals\)/);
    const s = await completed(r.id);
    const out = s.output as ProbeOutput;
    expect(out.outcome).toBe('Approved');
    expect(out.decisions).toHaveLength(1);
    expect(out.decisions[0]).toMatchObject({
      nonce: r.pending[0].nonce,
      approver: 'alice',
      action: 'approve',
      comment: 'checked the release notes',
      ip: '203.0.113.9, 10.0.0.1',
      userAgent: 'Mozilla/5.0 (iPhone) test',
      accepted: true,
    });
    expect(Date.parse(out.decisions[0].decidedAt)).not.toBeNaN();
    expect(await usedMarker(r.pending[0].nonce)).toBe(true);

    // the same link again: GET and POST both say it was used
    const again = await openPage(r.links[0]);
    expect(again.res.status).toBe(409);
    expect(again.html).toContain('already used');
    const replay = await post(r.links[0], {
      ...fullApproval,
      csrf_nonce: 'x'.repeat(22),
      csrf: 'y'.repeat(43),
    });
    expect(replay.status).toBe(403); // a forged CSRF value is refused before anything else
  });

  it('replay of a used link with a valid form is refused with 409 and decides nothing more', async () => {
    const r = await request({ required: 2, approvers: ['alice', 'bob'] });
    const page = await openPage(r.links[0]);
    const first = await post(r.links[0], { ...page.fields, ...fullApproval });
    expect(first.status).toBe(200);
    const second = await post(r.links[0], { ...page.fields, ...fullApproval });
    expect(second.status).toBe(409);
    expect(second.html).toMatch(/already used/);
    const s = (await statusOf(r.id))!;
    expect(s.runtimeStatus).toBe('Running');
    expect((s.customStatus as WaitingStatus).approvals?.received).toHaveLength(1);
  });

  it('concurrent submits of one link: exactly one decides', async () => {
    const r = await request({ required: 2 });
    const page = await openPage(r.links[0]);
    const results = await Promise.all(
      Array.from({ length: 5 }, () => post(r.links[0], { ...page.fields, ...fullApproval })),
    );
    expect(results.map((x) => x.status).sort()).toEqual([200, 409, 409, 409, 409]);
    await waitFor('decision processed', async () =>
      (await stillPending(r.id, r.pending[0].nonce)) ? undefined : true,
    );
    expect(((await statusOf(r.id))?.customStatus as WaitingStatus).approvals?.received).toHaveLength(1);
  });

  it('the form is enforced server side: typed APPROVE and every checklist box; reject needs neither', async () => {
    const r = await request();
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ ...fullApproval, confirm: '' }, /Type APPROVE/],
      [{ ...fullApproval, confirm: 'approve' }, /Type APPROVE/],
      [{ ...fullApproval, check_backup: '' }, /Backup location ready/],
      [(({ check_rollback: _drop, ...rest }) => rest)(fullApproval), /Rollback plan documented/],
      [{ ...fullApproval, decision: 'rollback' }, /can only approve or reject/],
      [{ ...fullApproval, decision: '' }, /can only approve or reject/],
    ];
    for (const [form, why] of cases) {
      const res = await decide(r.links[0], form);
      expect(res.status).toBe(400);
      expect(res.html).toMatch(why);
      expect(await stillPending(r.id, r.pending[0].nonce)).toBe(true);
    }
    expect(await usedMarker(r.pending[0].nonce)).toBe(false);
    // the re-shown form keeps the comment and works
    const shown = await decide(r.links[0], { ...fullApproval, confirm: '', comment: 'keep <me>' });
    expect(shown.html).toContain('keep &lt;me&gt;');
    // Reject is two steps: the first POST only asks again (one tap under Approve must not reject)
    const asked = await decide(r.links[1], { decision: 'reject', comment: 'not this week' });
    expect(asked.status).toBe(200);
    expect(asked.html).toContain('Yes, reject');
    expect(asked.html).toContain('not this week'); // the comment is carried to the second step
    expect(await stillPending(r.id, r.pending[1].nonce)).toBe(true);
    expect(await usedMarker(r.pending[1].nonce)).toBe(false);
    const rejected = await post(r.links[1], { ...shownFields(asked.html), comment: 'not this week' });
    expect(rejected.status).toBe(200);
    expect(rejected.html).toContain('Rejected');
    const s = await completed(r.id);
    expect((s.output as ProbeOutput).outcome).toBe('Rejected');
    expect((s.output as ProbeOutput).decisions[0]).toMatchObject({
      approver: 'bob',
      action: 'reject',
      comment: 'not this week',
    });
    // alice's link now belongs to a deploy that has ended
    const ended = await openPage(r.links[0]);
    expect(ended.res.status).toBe(410);
    expect(ended.html).toContain('<h1>Bob Dupont rejected</h1>'); // who decided, not a status dump
    expect(ended.html).toContain('has already ended');
    expect((await post(r.links[0], { ...shownFields(shown.html), ...fullApproval })).status).toBe(410);
  });

  function shownFields(html: string): Record<string, string> {
    const f: Record<string, string> = {};
    for (const m of html.matchAll(/<input type="hidden" name="([a-z_]+)" value="([^"]*)">/g)) f[m[1]] = m[2];
    return f;
  }

  it('CSRF: missing or foreign security token is refused', async () => {
    const r = await request();
    const missing = await post(r.links[0], fullApproval);
    expect(missing.status).toBe(403);
    expect(missing.html).toContain('security token is missing');
    // a valid CSRF pair from another link's page does not fit this link
    const other = await openPage(r.links[1]);
    const foreign = await post(r.links[0], { ...other.fields, ...fullApproval });
    expect(foreign.status).toBe(403);
    expect(foreign.html).toContain('does not match this link');
    expect(await stillPending(r.id, r.pending[0].nonce)).toBe(true);
  });

  it('cross-origin POSTs are refused (Origin, Referer, Sec-Fetch-Site)', async () => {
    const r = await request();
    const { fields } = await openPage(r.links[0]);
    const variants: Array<Record<string, string>> = [
      { origin: 'https://evil.example' },
      { origin: 'null', 'sec-fetch-site': 'cross-site' },
      { origin: 'null', 'sec-fetch-site': 'same-site' },
      { origin: 'null', 'sec-fetch-site': '', referer: 'https://evil.example/page' },
    ];
    for (const h of variants) {
      const res = await post(r.links[0], { ...fields, ...fullApproval }, h);
      expect(res.status).toBe(403);
      expect(res.html).toContain('another site');
    }
    expect(await stillPending(r.id, r.pending[0].nonce)).toBe(true);
    // the app's own origin is fine
    const ok = await post(
      r.links[0],
      { ...fields, ...fullApproval },
      { origin: host.baseUrl, 'sec-fetch-site': 'same-origin' },
    );
    expect(ok.status).toBe(200);
  });

  it('a token for another instance, or for no instance, is refused', async () => {
    const a = await request();
    const b = await request();
    const exp = Date.now() + 600_000;
    // a's nonce carried to b's deploy (a genuine signature, the wrong deploy)
    const swapped = approvalLink(
      host.baseUrl,
      signApprovalToken(
        { instanceId: b.id, approver: 'alice', action: 'approval', nonce: a.pending[0].nonce, exp },
        keys()[0],
      ),
    );
    const page = await openPage(swapped);
    expect(page.res.status).toBe(409);
    expect(page.html).toContain('not waiting for this link');
    const nowhere = approvalLink(
      host.baseUrl,
      signApprovalToken(
        {
          instanceId: 'deploy-prod-9.9.9-000000000000',
          approver: 'alice',
          action: 'approval',
          nonce: a.pending[0].nonce,
          exp,
        },
        keys()[0],
      ),
    );
    expect((await openPage(nowhere)).res.status).toBe(404);
    expect(await stillPending(a.id, a.pending[0].nonce)).toBe(true);
    expect(await stillPending(b.id, b.pending[0].nonce)).toBe(true);
  });

  it('expired, tampered and malformed links get a page that says why', async () => {
    const r = await request();
    const expired = approvalLink(
      host.baseUrl,
      signApprovalToken(
        {
          instanceId: r.id,
          approver: 'alice',
          action: 'approval',
          nonce: r.pending[0].nonce,
          exp: Date.now() - 1000,
        },
        keys()[0],
      ),
    );
    const e = await openPage(expired);
    expect(e.res.status).toBe(410);
    expect(e.html).toContain('expired');
    expect((await post(expired, fullApproval)).status).toBe(410);

    const t = r.tokens[0];
    const tamperedToken = t.slice(0, 10) + (t[10] === 'A' ? 'B' : 'A') + t.slice(11);
    const tp = await openPage(approvalLink(host.baseUrl, tamperedToken));
    expect(tp.res.status).toBe(403);
    expect(tp.html).toContain('not valid');
    const { fields } = await openPage(r.links[0]);
    expect(
      (await post(approvalLink(host.baseUrl, tamperedToken), { ...fields, ...fullApproval })).status,
    ).toBe(403);

    for (const bad of ['abc', 'a.b.c', '%F0%9F%99%82']) {
      const m = await openPage(`${host.baseUrl}/api/approvals/${bad}`);
      expect(m.res.status).toBe(400);
      expect(m.html).toContain('not valid');
    }
    expect(await stillPending(r.id, r.pending[0].nonce)).toBe(true);
  });

  it('key rotation: a link signed with the old key works while it is the previous key, and not after removal', async () => {
    const r = await request({ required: 2 }); // links signed with keyA
    process.env.APPROVAL_SIGNING_KEY = keyB;
    process.env.APPROVAL_SIGNING_KEY_PREVIOUS = keyA;
    try {
      const page = await openPage(r.links[0]);
      expect(page.res.status).toBe(200);
      expect((await post(r.links[0], { ...page.fields, ...fullApproval })).status).toBe(200);
      const bobPage = await openPage(r.links[1]); // CSRF now signed with keyB
      delete process.env.APPROVAL_SIGNING_KEY_PREVIOUS;
      const refused = await openPage(r.links[1]);
      expect(refused.res.status).toBe(403);
      expect(refused.html).toContain('retired');
      expect((await post(r.links[1], { ...bobPage.fields, ...fullApproval })).status).toBe(403);
      expect(await stillPending(r.id, r.pending[1].nonce)).toBe(true);
    } finally {
      process.env.APPROVAL_SIGNING_KEY = keyA;
      delete process.env.APPROVAL_SIGNING_KEY_PREVIOUS;
    }
  });

  it('a rollback link asks for ROLLBACK and sends a rollback decision', async () => {
    const r = await request({ action: 'rollback', approvers: ['alice'] });
    const { res, html } = await openPage(r.links[0]);
    expect(res.status).toBe(200);
    expect(html).toContain('Type ROLLBACK');
    expect(html).not.toContain('Tested on UAT?');
    expect((await decide(r.links[0], { decision: 'approve', confirm: 'APPROVE' })).status).toBe(400);
    expect((await decide(r.links[0], { decision: 'rollback', confirm: 'APPROVE' })).html).toContain(
      'Type ROLLBACK',
    );
    const done = await decide(r.links[0], { decision: 'rollback', confirm: ' ROLLBACK ' });
    expect(done.status).toBe(200);
    const s = await completed(r.id);
    expect((s.output as ProbeOutput).outcome).toBe('RollbackRequested');
    expect((s.output as ProbeOutput).decisions[0]).toMatchObject({ action: 'rollback', approver: 'alice' });
  });

  it('bad requests: wrong content type, oversized body — clear answers, nothing decided', async () => {
    const r = await request();
    const json = await fetch(r.links[0], {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"decision":"approve"}',
    });
    expect(json.status).toBe(415);
    const big = await post(r.links[0], { ...fullApproval, comment: 'x'.repeat(20_000) });
    expect(big.status).toBe(413);
    const { fields } = await openPage(r.links[0]);
    const long = await post(r.links[0], { ...fields, ...fullApproval, comment: 'x'.repeat(2500) });
    expect(long.status).toBe(400);
    expect(long.html).toContain('limited to 2000');
    expect(await stillPending(r.id, r.pending[0].nonce)).toBe(true);
  });

  it('JSON clients (the demo) get the form fields and the outcome as JSON', async () => {
    const r = await request();
    const res = await fetch(r.links[0], { headers: { accept: 'application/json' } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { form: Record<string, string>; action: string; approver: string };
    expect(body).toMatchObject({ action: 'approval', approver: 'alice' });
    const out = await fetch(r.links[0], {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        ...asApproverOf(r.links[0]),
      },
      body: new URLSearchParams({
        csrf_nonce: body.form.csrf_nonce,
        csrf: body.form.csrf,
        ...fullApproval,
      }).toString(),
    });
    expect(out.status).toBe(200);
    expect(((await out.json()) as { ok: boolean }).ok).toBe(true);
    const replay = await fetch(r.links[0], { headers: { accept: 'application/json' } });
    expect(replay.status).toBe(409);
    expect(((await replay.json()) as { error: string }).error).toBe('APPROVAL.USED');
  });

  it('an unexpected server error is a 503 page that decides nothing, not a bare 500', async () => {
    const handler = safely(async () => {
      throw new Error('boom with internal detail');
    });
    const res = await handler(
      new HttpRequest({ method: 'POST', url: `${host.baseUrl}/api/approvals/x.y` }),
      new InvocationContext({ functionName: 'approvalsDecide', logHandler: () => undefined }),
    );
    expect(res.status).toBe(503);
    expect(String(res.body)).toContain('nothing was decided');
    expect(String(res.body)).not.toContain('boom');
    const long = await openPage(`${host.baseUrl}/api/approvals/${'a'.repeat(3000)}.${'b'.repeat(43)}`);
    expect(long.res.status).toBe(400);
  });
});

describe('approval request helpers', () => {
  const req = (headers: Record<string, string>) =>
    new HttpRequest({ method: 'POST', url: 'https://app.example.net/api/approvals/x.y', headers });
  it('clientIp: the forwarded chain without ports, or unknown', () => {
    expect(clientIp(req({}))).toBe('unknown');
    expect(clientIp(req({ 'x-forwarded-for': '203.0.113.9:51234' }))).toBe('203.0.113.9');
    expect(clientIp(req({ 'x-forwarded-for': '1.2.3.4, [2001:db8::1]:443' }))).toBe('1.2.3.4, 2001:db8::1');
    expect(clientIp(req({ 'x-forwarded-for': 'x'.repeat(500) })).length).toBe(100);
  });
  it('crossOriginProblem: same origin passes, anything else is refused', () => {
    const base = 'https://pipeline.example.net';
    expect(crossOriginProblem(req({}), base)).toBeUndefined(); // a non-browser client without the headers
    expect(crossOriginProblem(req({ origin: base }), base)).toBeUndefined();
    expect(crossOriginProblem(req({ origin: 'https://app.example.net' }), base)).toBeUndefined(); // the request's own origin
    expect(
      crossOriginProblem(req({ origin: 'null', 'sec-fetch-site': 'same-origin' }), base),
    ).toBeUndefined();
    expect(
      crossOriginProblem(req({ origin: 'https://pipeline.example.net.evil.example' }), base)?.status,
    ).toBe(403);
    expect(crossOriginProblem(req({ 'sec-fetch-site': 'none' }), base)?.status).toBe(403);
    expect(crossOriginProblem(req({ referer: 'not a url' }), base)?.status).toBe(403);
    expect(crossOriginProblem(req({ referer: `${base}/api/approvals/x.y` }), base)).toBeUndefined();
  });
});
