/**
 * GitHub webhook intake, more rules as a sender (or an impostor) would try them (issue #20): header
 * shapes, the exact size limit, bodies that are not UTF-8, who a merge is attributed to, what an
 * ignored event says when a field is absent, names that GitHub compares without case, and what a
 * refused delivery says (GitHub shows the response body under the webhook's "Recent Deliveries", where
 * the maintainer who set it up reads it: each refusal names the header or body problem it found).
 */
import {
  MAX_WEBHOOK_BYTES,
  checkDeclaredLength,
  classifyEvent,
  isRejection,
  signPayload,
  verifyRequest,
  verifySignature,
  type IntakeSettings,
} from '../../shared/domain/webhook';
import {
  EXAMPLE_REPO,
  checkRunEventFor,
  pushTo,
  statusEventFor,
  workflowRunFor,
} from '../support/github-events';

const SHA = 'b'.repeat(40);
const secret = 'test-secret-0123456789';
const headers = (h: Record<string, string | undefined>) => ({
  get: (n: string) => h[n.toLowerCase()] ?? null,
});
const body = Buffer.from('{"zen":"Design for failure."}');
const good = {
  'content-type': 'application/json',
  'x-github-event': 'ping',
  'x-github-delivery': '72d3162e-cc78-11e3-81ab-4c9367dc0958',
  'x-hub-signature-256': signPayload(secret, body),
};
const s: IntakeSettings = {
  repository: EXAMPLE_REPO,
  defaultBranch: 'master',
  triggerEvent: 'push',
  imageWorkflow: 'test',
  imageWorkflowPath: '.github/workflows/test.yml',
  coverageContext: 'coverage',
};
const w: IntakeSettings = { ...s, triggerEvent: 'workflow_run' };

describe('signature', () => {
  it('the same signature in upper-case hex is accepted (hex has no case)', async () => {
    const sig = signPayload(secret, body);
    expect(await verifySignature([secret], body, 'sha256=' + sig.slice(7).toUpperCase())).toBe('current');
  });

  it('a body that is not UTF-8 is still checked against its signature: a wrong one is 401', async () => {
    const raw = Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]);
    expect(await verifySignature([secret], raw, signPayload(secret, raw))).toBe('current');
    expect(await verifySignature([secret], raw, signPayload('another-secret-000000', raw))).toBeUndefined();
    expect(
      await verifyRequest(
        [secret],
        headers({ ...good, 'x-hub-signature-256': signPayload('another-secret-000000', raw) }),
        raw,
      ),
    ).toMatchObject({ status: 401, code: 'WEBHOOK.SIGNATURE_INVALID' });
  });

  it('an empty body is never signed', async () => {
    const empty = new Uint8Array(0);
    expect(await verifySignature([secret], empty, signPayload(secret, ''))).toBeUndefined();
  });
});

describe('headers and size', () => {
  it.each([
    ['upper case', 'PING'],
    ['a line break after the name', 'ping\n'],
    ['a space before the name', ' ping'],
    ['65 characters', 'a'.repeat(65)],
  ])('an event name with %s is refused (400)', async (_n, event) => {
    expect(await verifyRequest([secret], headers({ ...good, 'x-github-event': event }), body)).toMatchObject({
      status: 400,
      code: 'WEBHOOK.EVENT_MISSING',
    });
  });

  it('an event name of 64 characters is still a name', async () => {
    const v = await verifyRequest([secret], headers({ ...good, 'x-github-event': 'a'.repeat(64) }), body);
    expect(v).toMatchObject({ event: 'a'.repeat(64) });
  });

  it.each([
    ['101 characters', 'd'.repeat(101)],
    ['a slash at the end', 'abc-123/'],
    ['a slash at the start', '/abc-123'],
    ['a space', 'abc 123'],
  ])('a delivery id with %s is refused (400)', async (_n, id) => {
    expect(await verifyRequest([secret], headers({ ...good, 'x-github-delivery': id }), body)).toMatchObject({
      status: 400,
      code: 'WEBHOOK.DELIVERY_MISSING',
    });
  });

  it('a delivery id of 100 characters is accepted', async () => {
    const v = await verifyRequest([secret], headers({ ...good, 'x-github-delivery': 'd'.repeat(100) }), body);
    expect(v).toMatchObject({ deliveryId: 'd'.repeat(100) });
  });

  it('a content type with spaces around it is still JSON; another type with a JSON suffix is not', async () => {
    expect(
      await verifyRequest(
        [secret],
        headers({ ...good, 'content-type': ' application/json ;charset=utf-8' }),
        body,
      ),
    ).toMatchObject({ event: 'ping' });
    expect(
      await verifyRequest(
        [secret],
        headers({ ...good, 'content-type': 'application/json-patch+json' }),
        body,
      ),
    ).toMatchObject({ status: 415, code: 'WEBHOOK.CONTENT_TYPE' });
  });

  it('a body of exactly 25 MB is read (and judged by its signature); one byte more is refused unread', async () => {
    const max = new Uint8Array(MAX_WEBHOOK_BYTES);
    expect(await verifyRequest([secret], headers(good), max)).toMatchObject({ status: 401 });
    expect(await verifyRequest([secret], headers(good), new Uint8Array(MAX_WEBHOOK_BYTES + 1))).toEqual({
      status: 413,
      code: 'WEBHOOK.TOO_LARGE',
      message: `payload larger than ${MAX_WEBHOOK_BYTES} bytes`,
    });
    expect(MAX_WEBHOOK_BYTES).toBe(25 * 1024 * 1024);
  });

  it('a declared length that is not a number is left to the actual size', () => {
    for (const v of ['abc', 'Infinity', '-1', ''])
      expect(checkDeclaredLength(headers({ 'content-length': v }))).toBeUndefined();
  });
});

describe('who a merge is attributed to', () => {
  it('a push: the pusher, else the sender, else "unknown"', () => {
    const p = pushTo(SHA);
    expect(classifyEvent('push', p, s)).toMatchObject({ mergedBy: 'Codertocat' });
    p.pusher = {};
    p.sender = { login: 'octocat' };
    expect(classifyEvent('push', p, s)).toMatchObject({ mergedBy: 'octocat' });
    delete p.sender;
    expect(classifyEvent('push', p, s)).toMatchObject({ mergedBy: 'unknown' });
  });

  it('a build: who triggered the run, else its actor, else the sender, else "unknown"', () => {
    const r = workflowRunFor(SHA);
    r.workflow_run.triggering_actor = { login: 'releaser' };
    r.workflow_run.actor = { login: 'author' };
    r.sender = { login: 'sender' };
    expect(classifyEvent('workflow_run', r, w)).toMatchObject({ mergedBy: 'releaser' });
    delete r.workflow_run.triggering_actor;
    expect(classifyEvent('workflow_run', r, w)).toMatchObject({ mergedBy: 'author' });
    delete r.workflow_run.actor;
    expect(classifyEvent('workflow_run', r, w)).toMatchObject({ mergedBy: 'sender' });
    delete r.sender;
    expect(classifyEvent('workflow_run', r, w)).toMatchObject({ mergedBy: 'unknown' });
  });
});

describe('GitHub names compare without case; commits and workflows must match', () => {
  it('the configured repository matches whatever case GitHub sends', () => {
    const p = pushTo(SHA);
    p.repository.full_name = EXAMPLE_REPO.toUpperCase();
    expect(classifyEvent('push', p, s)).toMatchObject({
      kind: 'merge',
      repository: EXAMPLE_REPO.toUpperCase(),
    });
    const r = workflowRunFor(SHA);
    r.workflow_run.head_repository.full_name = EXAMPLE_REPO.toLowerCase();
    expect(classifyEvent('workflow_run', r, w)).toMatchObject({ kind: 'merge' });
  });

  it('a build of a fork with the same name is not ours; a run without head repository is judged on the rest', () => {
    const r = workflowRunFor(SHA);
    r.workflow_run.head_repository = { full_name: 'evil/Hello-World' };
    expect(classifyEvent('workflow_run', r, w)).toEqual({
      kind: 'ignore',
      reason: `workflow_run built evil/Hello-World, not ${EXAMPLE_REPO}`,
    });
    delete r.workflow_run.head_repository;
    expect(classifyEvent('workflow_run', r, w)).toMatchObject({ kind: 'merge' });
  });

  it('the workflow name falls back to the workflow object when the run has none', () => {
    const r = workflowRunFor(SHA);
    delete r.workflow_run.name;
    r.workflow = { name: 'test' };
    expect(classifyEvent('workflow_run', r, w)).toMatchObject({ kind: 'merge' });
    r.workflow = { name: 'lint' };
    expect(classifyEvent('workflow_run', r, w)).toEqual({
      kind: 'ignore',
      reason: 'workflow "lint" is not the image workflow "test"',
    });
  });

  it('a deletion is a deletion whichever way GitHub says it', () => {
    const byFlag = pushTo(SHA);
    byFlag.deleted = true;
    expect(classifyEvent('push', byFlag, s)).toEqual({ kind: 'ignore', reason: 'branch deletion' });
    const byZero = pushTo('0'.repeat(40));
    byZero.deleted = false;
    expect(classifyEvent('push', byZero, s)).toEqual({ kind: 'ignore', reason: 'branch deletion' });
  });
});

describe('an ignored event says what was missing', () => {
  it('absent fields are named as absent', () => {
    const noRepo = pushTo(SHA);
    delete noRepo.repository;
    expect(classifyEvent('push', noRepo, s)).toEqual({
      kind: 'ignore',
      reason: `repository (none) is not ${EXAMPLE_REPO}`,
    });
    const noRef = pushTo(SHA);
    delete noRef.ref;
    expect(classifyEvent('push', noRef, s)).toEqual({
      kind: 'ignore',
      reason: 'push to (no ref), not refs/heads/master',
    });
    const st = statusEventFor(SHA, 'coverage', '90 %');
    delete st.context;
    expect(classifyEvent('status', st, s)).toEqual({
      kind: 'ignore',
      reason: 'status context "(none)" is not "coverage"',
    });
    const cr = checkRunEventFor(SHA, 'coverage');
    delete cr.check_run.name;
    expect(classifyEvent('check_run', cr, s)).toEqual({
      kind: 'ignore',
      reason: 'check run "(none)" is not "coverage"',
    });
    expect(
      classifyEvent(
        'check_run',
        { ...checkRunEventFor(SHA, 'lint'), repository: { full_name: EXAMPLE_REPO } },
        s,
      ),
    ).toEqual({
      kind: 'ignore',
      reason: 'check run "lint" is not "coverage"',
    });
  });

  it('a build with fields absent names each', () => {
    const noName = workflowRunFor(SHA);
    delete noName.workflow_run.name;
    delete noName.workflow;
    expect(classifyEvent('workflow_run', noName, w)).toEqual({
      kind: 'ignore',
      reason: 'workflow "(none)" is not the image workflow "test"',
    });
    const noAction = workflowRunFor(SHA);
    delete noAction.action;
    expect(classifyEvent('workflow_run', noAction, w)).toEqual({
      kind: 'ignore',
      reason: 'workflow_run (no action), not completed',
    });
    const noEvent = workflowRunFor(SHA);
    delete noEvent.workflow_run.event;
    expect(classifyEvent('workflow_run', noEvent, w)).toEqual({
      kind: 'ignore',
      reason: 'workflow_run triggered by (none), not push',
    });
    const noConclusion = workflowRunFor(SHA);
    noConclusion.workflow_run.conclusion = null;
    expect(classifyEvent('workflow_run', noConclusion, w)).toEqual({
      kind: 'ignore',
      reason: 'workflow_run concluded (none), not success',
    });
    const noBranch = workflowRunFor(SHA);
    delete noBranch.workflow_run.head_branch;
    expect(classifyEvent('workflow_run', noBranch, w)).toEqual({
      kind: 'ignore',
      reason: 'workflow_run on (no branch), not master',
    });
  });

  it('a build is ignored when deploys are triggered by push, saying so', () => {
    expect(classifyEvent('workflow_run', workflowRunFor(SHA), s)).toEqual({
      kind: 'ignore',
      reason: 'workflow_run ignored: deploys are triggered by push',
    });
  });
});

describe('a refused delivery says what was wrong', () => {
  const signed = (b: Buffer) => ({ ...good, 'x-hub-signature-256': signPayload(secret, b) });
  async function refusal(h: Record<string, string | undefined>, b: Buffer = body) {
    const r = await verifyRequest([secret], headers(h), b);
    if (!isRejection(r)) throw new Error('expected a refusal, got an accepted delivery');
    return r;
  }

  it('no signature header: names X-Hub-Signature-256 as missing', async () => {
    const r = await refusal({ ...good, 'x-hub-signature-256': undefined });
    expect(r.status).toBe(401);
    expect(r.message).toMatch(/X-Hub-Signature-256/);
    expect(r.message).toMatch(/missing/);
  });

  it('a signature made with another secret: says the signature does not match', async () => {
    const r = await refusal({ ...good, 'x-hub-signature-256': signPayload('another-secret-000000', body) });
    expect(r.status).toBe(401);
    expect(r.message).toMatch(/signature/);
    expect(r.message).toMatch(/not match/);
  });

  it('no event header: names X-GitHub-Event', async () => {
    const r = await refusal({ ...good, 'x-github-event': undefined });
    expect(r.status).toBe(400);
    expect(r.message).toMatch(/X-GitHub-Event/);
  });

  it('a delivery id that is not one: names X-GitHub-Delivery', async () => {
    const r = await refusal({ ...good, 'x-github-delivery': '../../etc/passwd' });
    expect(r.status).toBe(400);
    expect(r.message).toMatch(/X-GitHub-Delivery/);
  });

  it("a form-encoded delivery (GitHub's default content type): tells how to fix the webhook setting", async () => {
    const r = await refusal({ ...good, 'content-type': 'application/x-www-form-urlencoded' });
    expect(r.status).toBe(415);
    expect(r.message).toMatch(/application\/json/);
    expect(r.message).toMatch(/Content type/);
  });

  it('a signed body that is not JSON: says it is not valid JSON', async () => {
    const form = Buffer.from('payload=%7B%7D');
    const r = await refusal(signed(form), form);
    expect(r.status).toBe(400);
    expect(r.message).toMatch(/not valid UTF-8 JSON/);
  });

  it('a signed JSON array, string or null: says the body is not a JSON object', async () => {
    for (const text of ['[1,2]', '"push"', 'null']) {
      const b = Buffer.from(text);
      const r = await refusal(signed(b), b);
      expect(r.status).toBe(400);
      expect(r.message).toMatch(/not a JSON object/);
    }
  });

  it('every refusal message is a sentence someone can act on, never empty', async () => {
    for (const h of [
      { ...good, 'x-hub-signature-256': undefined },
      { ...good, 'x-hub-signature-256': 'sha256=' + '0'.repeat(64) },
      { ...good, 'x-github-event': 'Push Event' },
      { ...good, 'x-github-delivery': undefined },
      { ...good, 'content-type': undefined },
    ])
      expect((await refusal(h)).message.length).toBeGreaterThan(15);
  });
});
