/**
 * The intake against real local services: Azurite (deliveries store, ledger), the real local queue
 * behind the Service Bus REST sender, and a fake GitHub server behind the real Octokit adapter.
 */
import { HttpRequest, type HttpResponseInit } from '@azure/functions';
import { checkRunEventFor, example, pushTo, statusEventFor, workflowRunFor } from '../support/github-events';
import {
  ctx,
  deliveryId,
  makeRig,
  mergeOnDefaultBranch,
  PREVIOUS_SECRET,
  QUEUE,
  Rig,
  signedRequest,
  intakeServicesForFile,
} from '../support/intake-rig';

const svc = intakeServicesForFile();

let shaN = 0;
const newSha = () => (++shaN).toString(16).padStart(8, '0').repeat(5);
const body = (r: HttpResponseInit) => r.jsonBody as Record<string, unknown>;
const messagesFor = (sha: string) =>
  svc.queue.peek(QUEUE).filter((m) => (m.body as { sha?: string }).sha === sha);
const sendsFor = (sha: string) => svc.sends.filter((s) => s.messageId === `deploy-uat-${sha}`);
const postedFor = (sha: string) => svc.github.posted.filter((p) => p.sha === sha);

function mergeable(sha: string, coverage = '85.0%', version = '1.4.2'): void {
  svc.github.setCoverage(sha, coverage);
  svc.github.setVersion(sha, version);
}

describe('accepted merge', () => {
  let rig: Rig;
  beforeAll(() => {
    rig = makeRig(svc);
  });

  it('a signed push to the default branch with enough coverage becomes one deploy-uat message', async () => {
    const sha = newSha();
    mergeable(sha, 'Coverage: 85.2 %', '1.4.2');
    const id = deliveryId();
    const res = await rig.intake.handle(signedRequest('push', pushTo(sha), { id }), ctx());
    expect(res.status).toBe(202);
    expect(body(res)).toEqual({
      decision: 'accepted',
      reason: 'coverage 85.2 % ≥ 80 %',
      sha,
      version: '1.4.2',
      messageId: `deploy-uat-${sha}`,
      coverage: 85.2,
    });
    const msgs = messagesFor(sha);
    expect(msgs).toHaveLength(1);
    expect(msgs[0].messageId).toBe(`deploy-uat-${sha}`);
    expect(msgs[0].sessionId).toBe('uat');
    expect(msgs[0].body).toMatchObject({
      type: 'deploy-uat',
      environment: 'uat',
      version: '1.4.2',
      sha,
      imageRef: '127.0.0.1:5000/odoo-mta:uat-v1.4.2',
      coverage: 85.2,
      mergedBy: 'Codertocat',
      trigger: 'push',
      deliveryId: id,
      repository: 'Codertocat/Hello-World',
    });
    // the commit shows why it goes on, under the gate's own context, posted with the configured token
    expect(postedFor(sha)).toEqual([
      expect.objectContaining({
        state: 'pending',
        context: 'deploy/uat',
        description: 'coverage 85.2 % ≥ 80 %; deploy of 1.4.2 to UAT queued',
        authorization: `token ${svc.token}`,
      }),
    ]);
    const list = await rig.intake.list(10);
    expect(list[0]).toMatchObject({ decision: 'accepted', deliveryId: id, sha, version: '1.4.2' });
  });

  it('a redelivery gets the same answer and never a second message', async () => {
    const sha = newSha();
    mergeable(sha);
    const id = deliveryId();
    const first = await rig.intake.handle(signedRequest('push', pushTo(sha), { id }), ctx());
    const again = await rig.intake.handle(signedRequest('push', pushTo(sha), { id }), ctx());
    expect(again.status).toBe(first.status);
    expect(again.jsonBody).toEqual(first.jsonBody);
    expect(again.headers).toMatchObject({ 'x-intake-duplicate': 'true' });
    expect(sendsFor(sha)).toHaveLength(1);
    const list = await rig.intake.list(2);
    expect(list.map((d) => (d as { decision: string }).decision)).toEqual(['duplicate', 'accepted']);
  });

  it('50 concurrent copies of one delivery: one message, 50 identical answers', async () => {
    const sha = newSha();
    mergeable(sha);
    const id = deliveryId();
    const payload = pushTo(sha);
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => rig.intake.handle(signedRequest('push', payload, { id }), ctx())),
    );
    expect(new Set(answers.map((a) => `${a.status} ${JSON.stringify(a.jsonBody)}`)).size).toBe(1);
    expect(answers[0].status).toBe(202);
    expect(sendsFor(sha)).toHaveLength(1);
    expect(messagesFor(sha)).toHaveLength(1);
  });

  it('a copy that arrives while the first is still being processed, past the wait, is told so (202 processing)', async () => {
    const r = makeRig(svc, { duplicateWaitMs: 30 });
    const id = deliveryId();
    expect(await r.ports.store.claim(id, 'push')).toBe(true); // the first copy, still at work
    const res = await r.intake.handle(signedRequest('push', pushTo(newSha()), { id }), ctx());
    expect(res.status).toBe(202);
    expect(body(res)).toEqual({ decision: 'processing', reason: `delivery ${id} is being processed` });
  });

  it('a second delivery for an accepted commit is ignored, not deployed twice', async () => {
    const sha = newSha();
    mergeable(sha);
    await rig.intake.handle(signedRequest('push', pushTo(sha)), ctx());
    const res = await rig.intake.handle(signedRequest('push', pushTo(sha)), ctx());
    expect(res.status).toBe(200);
    expect(body(res)).toMatchObject({
      decision: 'ignored',
      reason: `commit ${sha.slice(0, 7)} already accepted`,
    });
    expect(sendsFor(sha)).toHaveLength(1);
  });

  it('workflow_run success of the image workflow triggers when so configured', async () => {
    const wrig = makeRig(svc, { settings: { ...rig.ports.settings, triggerEvent: 'workflow_run' } });
    const sha = newSha();
    mergeable(sha);
    mergeOnDefaultBranch(svc.github, sha);
    const ignored = await wrig.intake.handle(signedRequest('push', pushTo(sha)), ctx());
    expect(ignored.status).toBe(200);
    expect(body(ignored).reason).toBe('push ignored: deploys are triggered by workflow_run');
    const res = await wrig.intake.handle(signedRequest('workflow_run', workflowRunFor(sha)), ctx());
    expect(res.status).toBe(202);
    expect(messagesFor(sha)[0].body).toMatchObject({ trigger: 'workflow_run', mergedBy: 'Codertocat' });
  });

  it('coverage from a check run counts when no status carries it', async () => {
    const sha = newSha();
    svc.github.setVersion(sha, '2.0.0');
    svc.github.checkRuns.set(sha, [
      {
        name: 'coverage',
        status: 'completed',
        conclusion: 'success',
        completed_at: '2026-11-27T11:00:00Z',
        output: { title: 'Line coverage 91.3%' },
      },
    ]);
    const res = await rig.intake.handle(signedRequest('push', pushTo(sha)), ctx());
    expect(body(res)).toMatchObject({ decision: 'accepted', coverage: 91.3 });
  });

  it('accepts a delivery signed with the previous secret (rotation) and warns', async () => {
    const res = await rig.intake.handle(
      signedRequest('ping', example('ping'), { secret: PREVIOUS_SECRET }),
      ctx(),
    );
    expect(res.status).toBe(200);
    expect(rig.logs.some((l) => l.includes('previous secret'))).toBe(true);
  });
});

describe('blocked merge', () => {
  it('below the minimum: commit status says exactly why, nothing is queued', async () => {
    const rig = makeRig(svc);
    const sha = newSha();
    mergeable(sha, '76.4%');
    const res = await rig.intake.handle(signedRequest('push', pushTo(sha)), ctx());
    expect(res.status).toBe(202);
    expect(body(res)).toEqual({ decision: 'blocked', reason: 'coverage 76.4 % < 80 %', sha });
    expect(postedFor(sha)).toEqual([
      expect.objectContaining({
        state: 'failure',
        context: 'deploy/uat',
        description: 'coverage 76.4 % < 80 %',
      }),
    ]);
    expect(sendsFor(sha)).toHaveLength(0);
    expect((await rig.intake.list(1))[0]).toMatchObject({
      decision: 'blocked',
      reason: 'coverage 76.4 % < 80 %',
    });
  });

  it('below what UAT runs now (no regression)', async () => {
    const rig = makeRig(svc);
    await rig.ports.ledger.record('uat', {
      version: '1.0.0',
      sha: 'f'.repeat(40),
      coverage: 82.3,
      deployedAt: '2026-11-01T00:00:00Z',
    });
    const sha = newSha();
    mergeable(sha, '81%');
    const res = await rig.intake.handle(signedRequest('push', pushTo(sha)), ctx());
    expect(body(res)).toMatchObject({ decision: 'blocked', reason: 'coverage 81.0 % < UAT 82.3 %' });
    expect(postedFor(sha)[0].description).toBe('coverage 81.0 % < UAT 82.3 %');
  });

  it('no valid VERSION at the commit', async () => {
    const rig = makeRig(svc);
    const sha = newSha();
    svc.github.setCoverage(sha, '90%');
    const res = await rig.intake.handle(signedRequest('push', pushTo(sha)), ctx());
    expect(body(res)).toMatchObject({
      decision: 'blocked',
      reason: `no valid VERSION file at ${sha.slice(0, 7)}`,
    });
    svc.github.setVersion(sha, '1.0.0');
    // the same push again (a new delivery id) is a replay: a blocked commit stays blocked
    const again = await rig.intake.handle(signedRequest('push', pushTo(sha)), ctx());
    expect(body(again)).toMatchObject({
      decision: 'replay',
      reason: `push of ${sha.slice(0, 7)} was already evaluated (blocked: no valid VERSION file at ${sha.slice(0, 7)}); only a new event re-runs the gate`,
    });
    expect(sendsFor(sha)).toHaveLength(0);
  });
});

describe('waiting for coverage', () => {
  it('missing coverage waits; the coverage status event re-runs the gate and deploys', async () => {
    const rig = makeRig(svc);
    const sha = newSha();
    svc.github.setVersion(sha, '1.5.0');
    const res = await rig.intake.handle(signedRequest('push', pushTo(sha)), ctx());
    expect(res.status).toBe(202);
    expect(body(res)).toEqual({ decision: 'waiting', reason: 'waiting for the coverage status', sha });
    expect(rig.scheduled).toEqual([{ sha, deadline: '2026-11-27T12:30:00.000Z' }]);
    expect(postedFor(sha)).toEqual([
      expect.objectContaining({ state: 'pending', description: 'waiting for coverage (gives up 12:30 UTC)' }),
    ]);
    expect(sendsFor(sha)).toHaveLength(0);

    // a pending coverage status: still waiting, no new timer
    svc.github.setCoverage(sha, 'running', 'pending');
    const pending = await rig.intake.handle(
      signedRequest('status', statusEventFor(sha, 'coverage', 'running', 'pending')),
      ctx(),
    );
    expect(body(pending)).toMatchObject({ decision: 'waiting', reason: 'coverage pending' });
    expect(rig.scheduled).toHaveLength(1);

    rig.clock.t += 10 * 60000;
    svc.github.setCoverage(sha, '88.8%');
    const done = await rig.intake.handle(
      signedRequest('status', statusEventFor(sha, 'coverage', '88.8%')),
      ctx(),
    );
    expect(body(done)).toMatchObject({ decision: 'accepted', version: '1.5.0', coverage: 88.8 });
    expect(sendsFor(sha)).toHaveLength(1);

    // later events for the commit change nothing
    const late = await rig.intake.handle(
      signedRequest('check_run', checkRunEventFor(sha, 'coverage')),
      ctx(),
    );
    expect(late.status).toBe(200);
    expect(body(late).reason).toBe(`commit ${sha.slice(0, 7)} already passed`);
    expect((await rig.intake.gateTimeout({ sha })).decision).toBe('none');
    expect(sendsFor(sha)).toHaveLength(1);
  });

  it('gives up at the deadline with "no coverage status after 30 min"', async () => {
    const rig = makeRig(svc);
    const sha = newSha();
    svc.github.setVersion(sha, '1.6.0');
    await rig.intake.handle(signedRequest('push', pushTo(sha)), ctx());
    rig.clock.t += 30 * 60000;
    expect(await rig.intake.gateTimeout({ sha })).toEqual({
      decision: 'blocked',
      reason: 'no coverage status after 30 min',
    });
    expect(postedFor(sha).at(-1)).toMatchObject({
      state: 'failure',
      context: 'deploy/uat',
      description: 'no coverage status after 30 min',
    });
    const late = await rig.intake.handle(
      signedRequest('status', statusEventFor(sha, 'coverage', '99%')),
      ctx(),
    );
    expect(body(late)).toMatchObject({
      decision: 'ignored',
      reason: `commit ${sha.slice(0, 7)} already blocked`,
    });
    expect(sendsFor(sha)).toHaveLength(0);
  });

  it('a coverage event for a commit nobody merged is ignored', async () => {
    const rig = makeRig(svc);
    const sha = newSha();
    const res = await rig.intake.handle(
      signedRequest('status', statusEventFor(sha, 'coverage', '90%')),
      ctx(),
    );
    expect(res.status).toBe(200);
    expect(body(res).reason).toBe(`no merge of ${sha.slice(0, 7)} is waiting for coverage`);
  });
});

describe('ignored events', () => {
  const rig = () => makeRig(svc);
  it.each([
    ['ping', () => example('ping'), 'ping: webhook is configured'],
    [
      'push',
      () => pushTo('1'.repeat(40), 'feature/x'),
      'push to refs/heads/feature/x, not refs/heads/master',
    ],
    ['issues', () => example('issues'), 'event issues is not used'],
    [
      'status',
      () => statusEventFor('1'.repeat(40), 'ci/lint', 'ok'),
      'status context "ci/lint" is not "coverage"',
    ],
  ])('%s → 200 with the reason in the body', async (event, payload, reason) => {
    const r = rig();
    const res = await r.intake.handle(signedRequest(event, payload()), ctx());
    expect(res.status).toBe(200);
    expect(body(res)).toEqual({ decision: 'ignored', reason });
    expect((await r.intake.list(1))[0]).toMatchObject({ decision: 'ignored', reason, event });
  });
});

describe('rejections (nothing stored, nothing queued)', () => {
  const payload = JSON.stringify(pushTo('2'.repeat(40)));
  const cases: Array<[string, () => HttpRequest, number, string]> = [
    [
      'missing signature',
      () => signedRequest('push', payload, { headers: { 'x-hub-signature-256': undefined } }),
      401,
      'WEBHOOK.SIGNATURE_MISSING',
    ],
    [
      'wrong secret',
      () => signedRequest('push', payload, { secret: 'some-other-secret-000' }),
      401,
      'WEBHOOK.SIGNATURE_INVALID',
    ],
    [
      'body altered after signing',
      () => {
        const r = signedRequest('push', payload);
        return new HttpRequest({
          method: 'POST',
          url: r.url,
          headers: Object.fromEntries(r.headers.entries()),
          body: { string: payload.replace('master', 'mastex') },
        });
      },
      401,
      'WEBHOOK.SIGNATURE_INVALID',
    ],
    [
      'missing X-GitHub-Event',
      () => signedRequest('push', payload, { headers: { 'x-github-event': undefined } }),
      400,
      'WEBHOOK.EVENT_MISSING',
    ],
    [
      'missing X-GitHub-Delivery',
      () => signedRequest('push', payload, { headers: { 'x-github-delivery': undefined } }),
      400,
      'WEBHOOK.DELIVERY_MISSING',
    ],
    [
      'form-encoded body',
      () =>
        signedRequest('push', payload, { headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
      415,
      'WEBHOOK.CONTENT_TYPE',
    ],
    ['malformed JSON', () => signedRequest('push', payload.slice(0, -3)), 400, 'WEBHOOK.MALFORMED_JSON'],
    [
      'declared length over 25 MiB',
      () => signedRequest('push', payload, { headers: { 'content-length': String(25 * 1024 * 1024 + 1) } }),
      413,
      'WEBHOOK.TOO_LARGE',
    ],
  ];
  it.each(cases)('%s', async (_name, make, status, code) => {
    const r = makeRig(svc);
    const before = svc.sends.length;
    const res = await r.intake.handle(make(), ctx());
    expect(res.status).toBe(status);
    expect(body(res).error).toBe(code);
    expect(svc.sends.length).toBe(before);
    expect(await r.intake.list(10)).toEqual([]);
  });

  it('a body over 25 MiB without Content-Length is cut off at the cap', async () => {
    const r = makeRig(svc);
    const big = new Uint8Array(25 * 1024 * 1024 + 10).fill(0x20);
    const res = await r.intake.handle(
      new HttpRequest({
        method: 'POST',
        url: 'http://127.0.0.1/api/github/webhook',
        headers: { 'content-type': 'application/json' },
        body: { bytes: big },
      }),
      ctx(),
    );
    expect(res.status).toBe(413);
  });
});

describe('failures inside the pipeline', () => {
  it('GitHub down: 503 (not 500), the claim is released, a redelivery succeeds', async () => {
    const rig = makeRig(svc);
    const sha = newSha();
    mergeable(sha);
    const id = deliveryId();
    svc.github.failWith = 502;
    try {
      const res = await rig.intake.handle(signedRequest('push', pushTo(sha), { id }), ctx());
      expect(res.status).toBe(503);
      expect(body(res).error).toBe('GITHUB.UNAVAILABLE');
    } finally {
      svc.github.failWith = undefined;
    }
    expect(sendsFor(sha)).toHaveLength(0);
    // GitHub's "Redeliver" sends the same delivery id: it is processed again, now successfully
    const again = await rig.intake.handle(signedRequest('push', pushTo(sha), { id }), ctx());
    expect(again.status).toBe(202);
    expect(body(again)).toMatchObject({ decision: 'accepted' });
    expect(sendsFor(sha)).toHaveLength(1);
    expect((await rig.intake.list(10)).some((d) => (d as { decision: string }).decision === 'failed')).toBe(
      true,
    );
  });

  it('queue down: 503, the commit goes back to waiting, the next event queues exactly once', async () => {
    const rig = makeRig(svc);
    const sha = newSha();
    mergeable(sha);
    const id = deliveryId();
    svc.queueFailWith = 503;
    try {
      const res = await rig.intake.handle(signedRequest('push', pushTo(sha), { id }), ctx());
      expect(res.status).toBe(503);
      expect(body(res).error).toBe('QUEUE.UNAVAILABLE');
    } finally {
      svc.queueFailWith = undefined;
    }
    const retry = await rig.intake.handle(
      signedRequest('status', statusEventFor(sha, 'coverage', '85%')),
      ctx(),
    );
    expect(body(retry)).toMatchObject({ decision: 'accepted' });
    expect(messagesFor(sha)).toHaveLength(1);
  });

  it('without GitHub credentials a merge is answered 503 with the reason', async () => {
    const rig = makeRig(svc, { github: undefined });
    const res = await rig.intake.handle(signedRequest('push', pushTo(newSha())), ctx());
    expect(res.status).toBe(503);
    expect(body(res).error).toBe('GITHUB.NOT_CONFIGURED');
  });
});
