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
  example,
  pushTo,
  statusEventFor,
  workflowRunFor,
} from '../support/github-events';

const SHA = 'a'.repeat(40);

function headers(h: Record<string, string>) {
  const lower = Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
  return { get: (n: string) => lower[n.toLowerCase()] ?? null };
}

describe('signature', () => {
  // GitHub's documented test vector (docs: "Validating webhook deliveries")
  const secret = "It's a Secret to Everybody";
  const body = Buffer.from('Hello, World!');
  const expected = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';

  it('matches GitHub docs test vector', async () => {
    expect(signPayload(secret, body)).toBe(expected);
    expect(await verifySignature([secret], body, expected)).toBe('current');
  });

  it('accepts the previous secret during a rotation and says so', async () => {
    expect(await verifySignature(['a-brand-new-secret-123', secret], body, expected)).toBe('previous');
    expect(await verifySignature(['a-brand-new-secret-123', undefined], body, expected)).toBeUndefined();
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['sha1 form', 'sha1=0123456789abcdef0123456789abcdef01234567'],
    ['short hex', 'sha256=757107ea'],
    ['non-hex', 'sha256=' + 'z'.repeat(64)],
    ['one bit off', expected.slice(0, -1) + '6'],
    ['uppercase prefix', expected.replace('sha256', 'SHA256')],
  ])('rejects a %s signature', async (_n, header) => {
    expect(await verifySignature([secret], body, header)).toBeUndefined();
  });

  it('rejects a signature of another body', async () => {
    expect(await verifySignature([secret], Buffer.from('Hello, World?'), expected)).toBeUndefined();
  });
});

describe('verifyRequest order of checks', () => {
  const secret = 'test-secret-0123456789';
  const body = Buffer.from(JSON.stringify({ zen: 'Keep it logically awesome.' }));
  const good = {
    'content-type': 'application/json',
    'x-github-event': 'ping',
    'x-github-delivery': 'd-1',
    'x-hub-signature-256': signPayload(secret, body),
  };

  it('accepts a well-formed signed request', async () => {
    const v = await verifyRequest([secret], headers(good), body);
    expect(isRejection(v)).toBe(false);
    expect(v).toMatchObject({
      event: 'ping',
      deliveryId: 'd-1',
      secretUsed: 'current',
      payload: { zen: 'Keep it logically awesome.' },
    });
  });

  it('checks the signature before headers, content type and JSON', async () => {
    const bad = { 'x-hub-signature-256': 'sha256=' + '0'.repeat(64) };
    expect(await verifyRequest([secret], headers(bad), Buffer.from('not json'))).toMatchObject({
      status: 401,
      code: 'WEBHOOK.SIGNATURE_INVALID',
    });
    expect(await verifyRequest([secret], headers({}), body)).toMatchObject({
      status: 401,
      code: 'WEBHOOK.SIGNATURE_MISSING',
    });
  });

  it('400 on missing event or delivery headers', async () => {
    const { 'x-github-event': _e, ...noEvent } = good;
    const { 'x-github-delivery': _d, ...noDelivery } = good;
    expect(await verifyRequest([secret], headers(noEvent), body)).toMatchObject({
      status: 400,
      code: 'WEBHOOK.EVENT_MISSING',
    });
    expect(await verifyRequest([secret], headers(noDelivery), body)).toMatchObject({
      status: 400,
      code: 'WEBHOOK.DELIVERY_MISSING',
    });
    expect(
      await verifyRequest([secret], headers({ ...good, 'x-github-delivery': '../../etc/passwd' }), body),
    ).toMatchObject({ status: 400 });
  });

  it('415 on a form-encoded or missing content type', async () => {
    expect(
      await verifyRequest(
        [secret],
        headers({ ...good, 'content-type': 'application/x-www-form-urlencoded' }),
        body,
      ),
    ).toMatchObject({ status: 415 });
    const { 'content-type': _c, ...noType } = good;
    expect(await verifyRequest([secret], headers(noType), body)).toMatchObject({ status: 415 });
    expect(
      isRejection(
        await verifyRequest(
          [secret],
          headers({ ...good, 'content-type': 'Application/JSON; charset=utf-8' }),
          body,
        ),
      ),
    ).toBe(false);
  });

  it.each([
    ['truncated JSON', '{"zen": "Keep'],
    ['a JSON array', '[1,2]'],
    ['a JSON string', '"x"'],
    ['null', 'null'],
  ])('400 on %s', async (_n, text) => {
    const b = Buffer.from(text);
    expect(
      await verifyRequest([secret], headers({ ...good, 'x-hub-signature-256': signPayload(secret, b) }), b),
    ).toMatchObject({ status: 400, code: 'WEBHOOK.MALFORMED_JSON' });
  });

  it('400 on invalid UTF-8 even when signed', async () => {
    const b = Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]);
    expect(
      await verifyRequest([secret], headers({ ...good, 'x-hub-signature-256': signPayload(secret, b) }), b),
    ).toMatchObject({ status: 400 });
  });

  it('413 by declared length before reading, and by actual size', async () => {
    expect(checkDeclaredLength(headers({ 'content-length': String(MAX_WEBHOOK_BYTES + 1) }))).toMatchObject({
      status: 413,
    });
    expect(checkDeclaredLength(headers({ 'content-length': String(MAX_WEBHOOK_BYTES) }))).toBeUndefined();
    expect(checkDeclaredLength(headers({}))).toBeUndefined();
    expect(await verifyRequest([secret], headers(good), new Uint8Array(MAX_WEBHOOK_BYTES + 1))).toMatchObject(
      {
        status: 413,
      },
    );
  });
});

describe('classifyEvent with GitHub example payloads', () => {
  const s: IntakeSettings = {
    repository: EXAMPLE_REPO,
    defaultBranch: 'master',
    triggerEvent: 'push',
    imageWorkflow: 'test',
    imageWorkflowPath: '.github/workflows/test.yml',
    coverageContext: 'coverage',
  };

  it('ping', async () => expect(classifyEvent('ping', example('ping'), s)).toEqual({ kind: 'ping' }));

  it('push to the default branch is a merge, by the pusher', async () => {
    expect(classifyEvent('push', pushTo(SHA), s)).toEqual({
      kind: 'merge',
      trigger: 'push',
      repository: EXAMPLE_REPO,
      branch: 'master',
      sha: SHA,
      mergedBy: 'Codertocat',
      eventKey: `push:${SHA}`,
      eventLabel: 'push of aaaaaaa',
    });
  });

  it('push to another branch, a tag, a deletion or another repository is ignored with the reason', async () => {
    expect(classifyEvent('push', pushTo(SHA, 'feature/x'), s)).toEqual({
      kind: 'ignore',
      reason: 'push to refs/heads/feature/x, not refs/heads/master',
    });
    expect(
      classifyEvent(
        'push',
        example('push', (e) => e.ref === 'refs/tags/simple-tag' && !e.deleted),
        s,
      ),
    ).toMatchObject({ kind: 'ignore', reason: expect.stringContaining('refs/tags/simple-tag') });
    const del = pushTo('0'.repeat(40));
    del.deleted = true;
    expect(classifyEvent('push', del, s)).toEqual({ kind: 'ignore', reason: 'branch deletion' });
    const other = pushTo(SHA);
    other.repository.full_name = 'evil/fork';
    expect(classifyEvent('push', other, s)).toEqual({
      kind: 'ignore',
      reason: `repository evil/fork is not ${EXAMPLE_REPO}`,
    });
    expect(classifyEvent('push', pushTo(SHA), { ...s, repository: undefined })).toEqual({
      kind: 'ignore',
      reason: 'GITHUB_REPOSITORY is not configured',
    });
  });

  it('push is ignored when the trigger is workflow_run, and vice versa', async () => {
    expect(classifyEvent('push', pushTo(SHA), { ...s, triggerEvent: 'workflow_run' })).toMatchObject({
      kind: 'ignore',
      reason: 'push ignored: deploys are triggered by workflow_run',
    });
    expect(classifyEvent('workflow_run', workflowRunFor(SHA), s)).toMatchObject({ kind: 'ignore' });
  });

  it('workflow_run completed/success of the image workflow on the default branch is a merge', async () => {
    const w = { ...s, triggerEvent: 'workflow_run' as const };
    expect(classifyEvent('workflow_run', workflowRunFor(SHA, 42, 3), w)).toEqual({
      kind: 'merge',
      trigger: 'workflow_run',
      repository: EXAMPLE_REPO,
      branch: 'master',
      sha: SHA,
      mergedBy: 'Codertocat',
      eventKey: 'workflow_run:42:3',
      eventLabel: 'workflow run 42 attempt 3',
    });
    expect(
      classifyEvent('workflow_run', workflowRunFor(SHA), { ...w, imageWorkflow: 'build-image' }),
    ).toEqual({ kind: 'ignore', reason: 'workflow "test" is not the image workflow "build-image"' });
    const failed = workflowRunFor(SHA);
    failed.workflow_run.conclusion = 'failure';
    expect(classifyEvent('workflow_run', failed, w)).toEqual({
      kind: 'ignore',
      reason: 'workflow_run concluded failure, not success',
    });
    const requested = example('workflow_run', (e) => e.action === 'requested');
    requested.repository.full_name = EXAMPLE_REPO;
    expect(classifyEvent('workflow_run', requested, w)).toMatchObject({
      kind: 'ignore',
      reason: expect.stringContaining('not completed'),
    });
    const pr = workflowRunFor(SHA);
    pr.workflow_run.event = 'pull_request';
    expect(classifyEvent('workflow_run', pr, w)).toMatchObject({
      kind: 'ignore',
      reason: expect.stringContaining('pull_request'),
    });
    const fork = workflowRunFor(SHA);
    fork.workflow_run.head_repository = { full_name: 'evil/Hello-World' };
    expect(classifyEvent('workflow_run', fork, w)).toMatchObject({
      kind: 'ignore',
      reason: expect.stringContaining('evil/Hello-World'),
    });
    const branch = workflowRunFor(SHA);
    branch.workflow_run.head_branch = 'dev';
    expect(classifyEvent('workflow_run', branch, w)).toEqual({
      kind: 'ignore',
      reason: 'workflow_run on dev, not master',
    });
  });

  it('status and check_run of the coverage context are coverage updates; others are ignored', async () => {
    expect(classifyEvent('status', statusEventFor(SHA, 'coverage', '81 %'), s)).toEqual({
      kind: 'coverage-update',
      repository: EXAMPLE_REPO,
      sha: SHA,
    });
    expect(classifyEvent('status', statusEventFor(SHA, 'deploy/uat', 'x'), s)).toEqual({
      kind: 'ignore',
      reason: 'status context "deploy/uat" is not "coverage"',
    });
    expect(classifyEvent('check_run', checkRunEventFor(SHA, 'coverage'), s)).toEqual({
      kind: 'coverage-update',
      repository: EXAMPLE_REPO,
      sha: SHA,
    });
    expect(classifyEvent('check_run', example('check_run'), s)).toMatchObject({ kind: 'ignore' });
    expect(classifyEvent('issues', example('issues'), s)).toEqual({
      kind: 'ignore',
      reason: 'event issues is not used',
    });
  });

  it('does not trust shapes: junk in every field is ignored, never thrown', async () => {
    for (const ev of ['push', 'workflow_run', 'status', 'check_run']) {
      for (const junk of [
        {},
        { repository: 5 },
        {
          repository: { full_name: EXAMPLE_REPO },
          ref: 7,
          after: {},
          workflow_run: [],
          check_run: 'x',
          sha: 1,
        },
      ]) {
        expect(
          classifyEvent(ev, junk as Record<string, unknown>, {
            ...s,
            triggerEvent: ev === 'workflow_run' ? 'workflow_run' : 'push',
          }).kind,
        ).toBe('ignore');
      }
    }
  });
});

describe('rules of the intake classification', () => {
  const s: IntakeSettings = {
    repository: EXAMPLE_REPO,
    defaultBranch: 'master',
    triggerEvent: 'workflow_run',
    imageWorkflow: 'test',
    imageWorkflowPath: '.github/workflows/test.yml',
    coverageContext: 'coverage',
  };
  const push: IntakeSettings = { ...s, triggerEvent: 'push' };

  it('isRejection tells a refusal from a verified request', async () => {
    const secret = 'test-secret-0123456789';
    const b = Buffer.from('{}');
    const h = headers({
      'content-type': 'application/json',
      'x-github-event': 'ping',
      'x-github-delivery': 'd-2',
      'x-hub-signature-256': signPayload(secret, b),
    });
    expect(isRejection(await verifyRequest([secret], h, b))).toBe(false);
    expect(isRejection(await verifyRequest(['another-secret-0000000'], h, b))).toBe(true);
    expect(isRejection({ status: 413, code: 'WEBHOOK.TOO_LARGE', message: 'x' })).toBe(true);
  });

  describe.each([
    ['39 hex digits', 'a'.repeat(39)],
    ['41 hex digits', 'a'.repeat(41)],
    ['non-hex', 'g'.repeat(40)],
    ['a branch name', 'master'],
    ['uppercase', 'A'.repeat(40)],
  ])('a commit id that is %s is refused', (_n, bad) => {
    it('for push', async () =>
      expect(classifyEvent('push', { ...pushTo(SHA), after: bad }, push)).toEqual({
        kind: 'ignore',
        reason: 'push without a valid "after" commit sha',
      }));
    it('for workflow_run', async () => {
      const w = workflowRunFor(SHA);
      w.workflow_run.head_sha = bad;
      expect(classifyEvent('workflow_run', w, s)).toEqual({
        kind: 'ignore',
        reason: 'workflow_run without a valid head_sha',
      });
    });
    it('for status', async () =>
      expect(classifyEvent('status', statusEventFor(bad, 'coverage', '90%'), s)).toEqual({
        kind: 'ignore',
        reason: 'status without a valid sha',
      }));
    it('for check_run', async () =>
      expect(classifyEvent('check_run', checkRunEventFor(bad, 'coverage'), s)).toEqual({
        kind: 'ignore',
        reason: 'check_run without a valid head_sha',
      }));
  });

  it('pull_request_target is not pull_request, and neither is a push: only a build started by a push is a merge', async () => {
    for (const event of [
      'pull_request',
      'pull_request_target',
      'pull_request_review',
      'workflow_dispatch',
      'schedule',
      'merge_group',
      'push_tag',
      '',
    ]) {
      const w = workflowRunFor(SHA);
      w.workflow_run.event = event;
      expect(classifyEvent('workflow_run', w, s)).toEqual({
        kind: 'ignore',
        reason: `workflow_run triggered by ${event}, not push`,
      });
    }
  });

  it('the workflow file decides, not the name: same name in another file is ignored', async () => {
    const w = workflowRunFor(SHA);
    w.workflow_run.path = '.github/workflows/test.yml.evil.yml';
    expect(classifyEvent('workflow_run', w, s)).toEqual({
      kind: 'ignore',
      reason:
        'workflow file .github/workflows/test.yml.evil.yml is not the image workflow .github/workflows/test.yml',
    });
    delete w.workflow_run.path;
    expect(classifyEvent('workflow_run', w, s)).toMatchObject({
      kind: 'ignore',
      reason: expect.stringContaining('workflow file (none)'),
    });
  });

  it('a run id and attempt make the event key; junk there is refused; an absent attempt is the first', async () => {
    const w = workflowRunFor(SHA, 99);
    delete w.workflow_run.run_attempt;
    expect(classifyEvent('workflow_run', w, s)).toMatchObject({
      kind: 'merge',
      eventKey: 'workflow_run:99:1',
    });
    for (const id of [0, -1, '99', 1.5, null])
      expect(classifyEvent('workflow_run', { ...w, workflow_run: { ...w.workflow_run, id } }, s)).toEqual({
        kind: 'ignore',
        reason: 'workflow_run without a valid run id',
      });
    for (const run_attempt of [0, '2', 2.5, null])
      expect(
        classifyEvent('workflow_run', { ...w, workflow_run: { ...w.workflow_run, run_attempt } }, s),
      ).toEqual({ kind: 'ignore', reason: 'workflow_run without a valid run_attempt' });
  });

  it('a push must name refs/heads/<default branch> exactly', async () => {
    for (const ref of [
      'refs/tags/master',
      'refs/heads/master2',
      'refs/heads/x/master',
      'master',
      'refs/heads/Master',
    ]) {
      expect(classifyEvent('push', { ...pushTo(SHA), ref }, push)).toEqual({
        kind: 'ignore',
        reason: `push to ${ref}, not refs/heads/master`,
      });
    }
  });
});
