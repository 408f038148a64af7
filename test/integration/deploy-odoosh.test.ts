/**
 * The Odoo.sh target end to end through the embedded host on the real Durable Task engine:
 * `POST /api/deployments` with `"target": "odoosh"` → the branch's lane → `deployOdooSh` → the real
 * Octokit adapter moving the tracked branch on a local server that speaks GitHub's refs/compare/statuses
 * API (with GitHub's own fast-forward rule) → waiting for `ci/odoo.sh (<stage>)` on durable timers, in
 * real time: ODOOSH_POLL_SECONDS is 2 s here, and the waits that must run out (ODOOSH_WAIT_MINUTES, an
 * approval's APPROVAL_TIMEOUT_HOURS) are set short by the tests that wait for them.
 *
 * Production-stage branches go through PROD's approval rules first (production wiring from settings:
 * APPROVERS, APPROVAL_SIGNING_KEY, the product's Slack adapter posting to a fake Slack): the links are
 * read from what Slack received and decided on the real approval page (GET + POST with CSRF).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { startLocalHost, type LocalHost } from '../../local/host';
import { createLedger } from '../../shared/adapters/ledger';
import { resetDefaultIntake } from '../../functions/activities/intake';
import { setOdooShPorts } from '../../functions/activities/odoosh';
import type { OdooShResult } from '../../shared/domain/odoosh';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github';
import { startFakeSlack, type FakeSlack } from '../support/fake-slack';
import { approvalLinks, decideByLink, waitForLinks } from '../support/prod-approval';
import { approversSetting, cookieOf, PEOPLE, type Who } from '../support/identities';
import type { OdooShCustomStatus } from '../../functions/orchestrators/deployOdooSh';

/** the status page's read-only key (the dashboard does not take the function key) */
const STATUS_READ_KEY = `read-${'s'.repeat(40)}`;
const REPO = 'acme/odoo-mta';
const sha = (c: string) => c.repeat(40).slice(0, 40);
const C1 = sha('1'); // staging + production heads at the start
const C2 = sha('2'); // child of C1 (gate passed)
const C3 = sha('3'); // child of C2 (gate passed)
const X = sha('e'); // child of C1, diverged from C2/C3 (gate passed)
const NOGATE = sha('4'); // child of C3, no gate status, never on UAT
const FAIL = sha('5'); // child of C3 (gate passed), Odoo.sh build fails
const SLOW = sha('6'); // child of C3 (gate passed), Odoo.sh never answers
const P2 = sha('7'); // child of C3 (gate passed): production releases
const P3 = sha('8'); // child of P2 (gate passed)
const signingKey = randomBytes(36).toString('base64url');

const saved = { ...process.env };
let host: LocalHost;
let github: FakeGitHub;
let tmp: string;
let slack: FakeSlack;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'odoosh-'));
  github = await startFakeGitHub(REPO);
  slack = await startFakeSlack();
  github.addCommit(C1);
  github.addCommit(C2, C1);
  github.addCommit(C3, C2);
  github.addCommit(X, C1);
  github.addCommit(NOGATE, C3);
  github.addCommit(FAIL, C3);
  github.addCommit(SLOW, C3);
  github.addCommit(P2, C3);
  github.addCommit(P3, P2);
  github.refs.set('staging', C1);
  github.refs.set('production', C1);
  for (const c of [C2, C3, X, FAIL, SLOW, P2, P3])
    github.statuses.set(c, [
      { context: 'deploy/uat', state: 'success', description: 'coverage 85.0 % ≥ 80 %' },
    ]);
  host = await startLocalHost({
    dataDir: tmp,
    port: 0,
    functionsDir: path.join(__dirname, '..', 'fixtures', 'odoosh-app'),
    log: {
      debug() {},
      info() {},
      warn() {},
      error() {},
      child() {
        return this;
      },
    },
    env: {
      STATUS_READ_KEY: STATUS_READ_KEY,
      GITHUB_REPOSITORY: REPO,
      GITHUB_TOKEN: 'ghs_odooshtest_token_value',
      GITHUB_API_URL: github.url,
      GITHUB_WEBHOOK_SECRET: 'odoosh-test-webhook-secret',
      ODOOSH_REPOSITORY: REPO,
      ODOOSH_BRANCHES: 'staging:staging,production:production,preview:dev',
      ODOOSH_WAIT_MINUTES: '60',
      // a build status set by a test is read within a second or two
      ODOOSH_POLL_SECONDS: '2',
      DEPLOY_QUEUE_NAME: 'deploy-requests',
      LOG_LEVEL: 'error',
      // PROD's approval rules (production-stage branches)
      APPROVERS: approversSetting('alice', 'bob', 'carol'),
      APPROVALS_REQUIRED: '1',
      APPROVAL_TIMEOUT_HOURS: '2',
      APPROVAL_REMINDER_MINUTES: '30',
      APPROVAL_SIGNING_KEY: signingKey,
      // approval links go privately to each approver's Slack user id (chat.postMessage)
      SLACK_BOT_TOKEN: slack.token,
      SLACK_API_URL: slack.apiUrl,
    },
  });
  // the gate passed for these commits and UAT ran them: by the pipeline's own ledger, not the statuses above
  // (anyone with write access can post a status); UAT ran 1.1.0 at C2 last: a deploy by version alone finds it
  const container = BlobServiceClient.fromConnectionString(
    host.blobConnectionString ?? process.env.BACKUP_STORAGE_CONNECTION!,
  ).getContainerClient('ledger');
  const ledger = createLedger(container);
  for (const [i, c] of [C3, X, FAIL, SLOW, P2, P3].entries())
    await ledger.record('uat', { version: `0.9.${i}`, sha: c, deployedAt: '2026-11-26T09:00:00.000Z' });
  await ledger.record('uat', { version: '1.1.0', sha: C2, deployedAt: '2026-11-26T10:00:00.000Z' });
}, 300_000);

afterAll(async () => {
  setOdooShPorts(undefined);
  await resetDefaultIntake();
  await host?.stop();
  await github?.stop();
  await slack?.stop();
  process.env = saved;
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const key = () => ({ 'x-functions-key': host.keys.functionKey, 'content-type': 'application/json' });
/** the function key, and `who` signed in (the embedded host's local sign-in): the request is theirs */
const as = (who: Who) => ({ ...key(), cookie: cookieOf(host.keys.masterKey, who) });
/** the Cookie header of `who` signed in (an approval page decides only for its approver) */
const signedIn = (who: Who) => ({ cookie: cookieOf(host.keys.masterKey, who) });
async function post(
  body: unknown,
  headers: Record<string, string> = key(),
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${host.baseUrl}/api/deployments`, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** wait for a condition (real time) */
async function until<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const customStatusOf = async (id: string) =>
  (await host.durable.getStatus(id))?.customStatus as OdooShCustomStatus | undefined;
/** the deploy's result once it ended (the lane starts the instance a moment after the 202) */
async function outcomeOf(id: string, timeoutMs = 60_000): Promise<OdooShResult> {
  const s = await until(
    `${id} to end`,
    async () => {
      const st = await host.durable.getStatus(id);
      return st && ['Completed', 'Failed', 'Terminated'].includes(st.runtimeStatus) ? st : undefined;
    },
    timeoutMs,
  );
  expect({ id, runtimeStatus: s.runtimeStatus }).toEqual({ id, runtimeStatus: 'Completed' });
  return s.output as OdooShResult;
}
/** run `fn` with these settings in process.env (where the host's functions read them), then put them back */
async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const before = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  setOdooShPorts(undefined); // the Odoo.sh activities read their settings again on first use
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(before)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    setOdooShPorts(undefined);
  }
}
const setBuild = (c: string, stage: string, state: 'success' | 'failure' | 'pending', target_url?: string) =>
  github.statuses.set(c, [
    ...(github.statuses.get(c) ?? []).filter((s) => s.context !== `ci/odoo.sh (${stage})`),
    { context: `ci/odoo.sh (${stage})`, state, description: `build ${state}`, target_url },
  ]);

describe('Odoo.sh target', () => {
  it('refuses bad requests with clear errors, and needs the function key', async () => {
    expect(
      (
        await post(
          { target: 'odoosh', branch: 'staging', version: '1.1.0' },
          { 'content-type': 'application/json' },
        )
      ).status,
    ).toBe(401);
    const cases: Array<[unknown, number, string]> = [
      ['{not json', 400, 'DEPLOYMENTS.BAD_JSON'],
      [{ target: 'heroku', branch: 'staging', version: '1.1.0' }, 400, 'DEPLOYMENTS.BAD_REQUEST'],
      [{ target: 'odoosh', version: '1.1.0' }, 400, 'DEPLOYMENTS.BAD_REQUEST'],
      [{ target: 'odoosh', branch: 'staging', version: 'v1' }, 400, 'DEPLOYMENTS.BAD_REQUEST'],
      [{ target: 'odoosh', branch: 'staging', version: '1.1.0', sha: 'ABC' }, 400, 'DEPLOYMENTS.BAD_REQUEST'],
      [
        { target: 'odoosh', branch: 'staging', version: '1.1.0', force: 'yes' },
        400,
        'DEPLOYMENTS.BAD_REQUEST',
      ],
      [{ target: 'odoosh', branch: 'main', version: '1.1.0' }, 400, 'DEPLOYMENTS.UNKNOWN_BRANCH'],
      [{ target: 'odoosh', branch: 'staging', version: '9.9.9' }, 422, 'DEPLOYMENTS.UNKNOWN_VERSION'],
      // production moves need approval: why is required, as for PROD; who asks is the caller, and a
      // `requestedBy` label must be a plain name
      [
        {
          target: 'odoosh',
          branch: 'production',
          version: '1.1.0',
          requestedBy: 'alice; rm -rf /',
          reason: 'release',
        },
        400,
        'DEPLOYMENTS.BAD_REQUEST',
      ],
      [
        { target: 'odoosh', branch: 'production', version: '1.1.0', requestedBy: 'alice' },
        400,
        'DEPLOYMENTS.BAD_REQUEST',
      ],
      [
        { target: 'odoosh', branch: 'production', version: '1.1.0', requestedBy: 'alice', reason: '   ' },
        400,
        'DEPLOYMENTS.BAD_REQUEST',
      ],
    ];
    for (const [body, status, error] of cases) {
      const r = await post(body);
      expect({ body, status: r.status, error: r.body.error }).toEqual({ body, status, error });
      expect(String(r.body.message)).not.toMatch(/ghs_/);
    }
    expect(github.refUpdates).toEqual([]);
  });

  it('a malformed ODOOSH_POLL_SECONDS is a clear 503 naming the setting and its form; nothing moves', async () => {
    const moves = github.refUpdates.length;
    for (const value of ['0', '2.5', 'often']) {
      const r = await withEnv({ ODOOSH_POLL_SECONDS: value }, () =>
        post({ target: 'odoosh', branch: 'staging', version: '1.1.0' }),
      );
      expect({ value, status: r.status, error: r.body.error }).toEqual({
        value,
        status: 503,
        error: 'CONFIG.INVALID',
      });
      expect(String(r.body.message)).toContain('ODOOSH_POLL_SECONDS');
      expect(String(r.body.message)).toContain('an integer 1-600');
    }
    expect(github.refUpdates.length).toBe(moves);
  });

  it('a missing ODOOSH_REPOSITORY is a clear 503 naming the setting', async () => {
    const before = process.env.ODOOSH_REPOSITORY;
    delete process.env.ODOOSH_REPOSITORY;
    try {
      const r = await post({ target: 'odoosh', branch: 'staging', version: '1.1.0' });
      expect(r.status).toBe(503);
      expect(r.body).toMatchObject({ error: 'CONFIG.ODOOSH_MISSING' });
      expect(String(r.body.message)).toContain('ODOOSH_REPOSITORY');
    } finally {
      process.env.ODOOSH_REPOSITORY = before;
    }
  });

  it('fast-forwards the branch to the release commit and waits for Odoo.sh: Succeeded, recorded, visible in the API', async () => {
    const r = await post({ target: 'odoosh', branch: 'staging', version: '1.1.0', reason: 'staging check' });
    expect(r.status).toBe(202);
    const id = String(r.body.id);
    expect(id).toBe(`deploy-odoosh-staging-1.1.0-${C2.slice(0, 12)}`);
    await until('the branch to move', () => github.refs.get('staging') === C2);
    expect(github.refUpdates.at(-1)).toEqual({ branch: 'staging', from: C1, to: C2, force: false });
    // Odoo.sh builds, then reports
    await until(
      'waiting for odoo.sh',
      async () => (await customStatusOf(id))?.step === 'waiting-for-odoo.sh',
    );
    setBuild(C2, 'staging', 'success', 'https://acme-staging.odoo.com/');
    const out = await outcomeOf(id);
    expect(out).toMatchObject({
      outcome: 'Succeeded',
      branch: 'staging',
      version: '1.1.0',
      sha: C2,
      previousSha: C1,
      targetUrl: 'https://acme-staging.odoo.com/',
    });
    const container = BlobServiceClient.fromConnectionString(
      host.blobConnectionString ?? process.env.BACKUP_STORAGE_CONNECTION!,
    ).getContainerClient('ledger');
    expect(await createLedger(container).current('odoosh-staging')).toMatchObject({
      version: '1.1.0',
      sha: C2,
      branch: 'staging',
    });
    const view = await (await fetch(`${host.baseUrl}/api/deployments/${id}`, { headers: key() })).json();
    expect(view).toMatchObject({ id, runtimeStatus: 'Completed', outcome: 'Succeeded' });
    // the same release again is a duplicate, not a second move
    const again = await post({ target: 'odoosh', branch: 'staging', version: '1.1.0' });
    expect(again.status).toBe(409);
    expect(again.body.error).toBe('DEPLOYMENTS.DUPLICATE');
  });

  it('refuses a non-fast-forward unless forced, and says why; forced, it moves the branch', async () => {
    github.refs.set('staging', C3);
    const r = await post({ target: 'odoosh', branch: 'staging', version: '1.3.0', sha: X });
    expect(r.status).toBe(202);
    const out = await outcomeOf(String(r.body.id));
    expect(out).toMatchObject({ outcome: 'Refused', code: 'ODOOSH.NOT_FAST_FORWARD' });
    expect(out.reason).toMatch(/not a fast-forward: .*diverged; pass "force": true/);
    expect(github.refs.get('staging')).toBe(C3);

    const forced = await post({ target: 'odoosh', branch: 'staging', version: '1.3.0', sha: X, force: true });
    expect(forced.status).toBe(202);
    await until('the forced move', () => github.refs.get('staging') === X);
    expect(github.refUpdates.at(-1)).toEqual({ branch: 'staging', from: C3, to: X, force: true });
    setBuild(X, 'staging', 'success');
    expect(await outcomeOf(String(forced.body.id))).toMatchObject({
      outcome: 'Succeeded',
      sha: X,
      previousSha: C3,
    });
  });

  it('refuses a commit that did not pass the gate, and moves nothing', async () => {
    const before = github.refUpdates.length;
    const r = await post({ target: 'odoosh', branch: 'staging', version: '1.4.0', sha: NOGATE });
    const out = await outcomeOf(String(r.body.id));
    expect(out).toMatchObject({ outcome: 'Refused', code: 'ODOOSH.GATE_NOT_PASSED' });
    expect(out.reason).toContain('never ran on UAT');
    expect(github.refUpdates.length).toBe(before);
  });

  it("reports Odoo.sh's failed build with its URL", async () => {
    github.refs.set('staging', C3);
    const r = await post({ target: 'odoosh', branch: 'staging', version: '1.5.0', sha: FAIL });
    await until('the move', () => github.refs.get('staging') === FAIL);
    setBuild(FAIL, 'staging', 'failure', 'https://www.odoo.sh/project/acme/branches/staging/builds/42');
    const out = await outcomeOf(String(r.body.id));
    expect(out).toMatchObject({
      outcome: 'Failed',
      code: 'ODOOSH.BUILD_FAILED',
      targetUrl: 'https://www.odoo.sh/project/acme/branches/staging/builds/42',
    });
    expect(out.reason).toContain('builds/42');
  });

  it('reads the build status every ODOOSH_POLL_SECONDS while Odoo.sh does not report, and times out after ODOOSH_WAIT_MINUTES', async () => {
    github.refs.set('staging', C3);
    // both are read per request (POST /api/deployments passes them to the deploy): 12 s, a read every 3 s
    // (the host's own ODOOSH_POLL_SECONDS is 2)
    const r = await withEnv({ ODOOSH_WAIT_MINUTES: '0.2', ODOOSH_POLL_SECONDS: '3' }, () =>
      post({ target: 'odoosh', branch: 'staging', version: '1.6.0', sha: SLOW }),
    );
    expect(r.status).toBe(202);
    const id = String(r.body.id);
    await until('the move', () => github.refs.get('staging') === SLOW);
    setBuild(SLOW, 'staging', 'pending');
    const out = await outcomeOf(id);
    expect(out).toMatchObject({ outcome: 'TimedOut', code: 'ODOOSH.TIMEOUT' });
    expect(out.reason).toBe(`no ci/odoo.sh (staging) status for ${SLOW.slice(0, 7)} after 12 s`);
    expect(out.waitedMs).toBeGreaterThanOrEqual(12_000);

    // the waits between two reads, from the instance's history: each is a durable timer set at most
    // ODOOSH_POLL_SECONDS ahead, or up to the deadline when that comes first
    const history = ((await host.durable.getStatus(id, { showHistory: true }))?.history ?? []) as Array<{
      EventType?: string;
      FireAt?: string;
      Timestamp?: string;
    }>;
    const timers = history
      .filter((e) => e.EventType === 'TimerCreated')
      .map((e) => ({ fireAt: Date.parse(e.FireAt ?? ''), createdAt: Date.parse(e.Timestamp ?? '') }));
    for (const t of timers) expect(t.fireAt - t.createdAt).toBeLessThanOrEqual(3000);
    // the polls before the deadline (those due at it end the wait), each due at least ODOOSH_POLL_SECONDS
    // after the previous one — less up to a second: the real engine fires a timer up to a second early
    // (seen here, on Azurite: timers set 2 s ahead fired after ≈ 1 s, as if the delay of the timer's queue
    // message were cut to whole seconds)
    const deadline = Math.max(...timers.map((t) => t.fireAt));
    const polls = timers.filter((t) => t.fireAt < deadline);
    expect(polls.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < polls.length; i++)
      expect(polls[i].fireAt - polls[i - 1].fireAt).toBeGreaterThan(3000 - 1000);
    // what GitHub received: the first read after the move, then one read after each timer
    const paths = github.requests.map((q) => `${q.method} ${decodeURIComponent(q.path.split('?')[0])}`);
    const reads = paths.flatMap((p, i) => (p === `GET /repos/${REPO}/commits/${SLOW}/status` ? [i] : []));
    expect(reads).toHaveLength(timers.length + 1);
    const moved = paths.lastIndexOf(`PATCH /repos/${REPO}/git/refs/heads/staging`);
    expect(moved).toBeGreaterThanOrEqual(0);
    expect(reads[0]).toBeGreaterThan(moved);
  }, 120_000);

  it('creates a missing dev-stage branch at the release commit', async () => {
    const r = await post({ target: 'odoosh', branch: 'preview', version: '1.1.0', sha: C3 });
    expect(r.status).toBe(202);
    await until('the branch to be created', () => github.refs.get('preview') === C3);
    expect(github.refUpdates.at(-1)).toEqual({ branch: 'preview', to: C3, force: false });
    setBuild(C3, 'dev', 'success');
    expect(await outcomeOf(String(r.body.id))).toMatchObject({
      outcome: 'Succeeded',
      branch: 'preview',
      stage: 'dev',
    });
  });

  it('GitHub unreachable: retried, then Failed with a coded reason and no token in it', async () => {
    github.refs.set('staging', C3);
    github.failWith = 503;
    const asked = github.requests.length;
    try {
      const r = await post({ target: 'odoosh', branch: 'staging', version: '1.1.0', sha: C2, force: true });
      expect(r.status).toBe(202);
      const out = await outcomeOf(String(r.body.id));
      expect(out).toMatchObject({ outcome: 'Failed', code: 'GITHUB.UNAVAILABLE' });
      expect(out.reason).not.toMatch(/ghs_/);
      // the preflight was tried 3 times (5 s apart) before it gave up
      expect(github.requests.length - asked).toBeGreaterThanOrEqual(3);
    } finally {
      github.failWith = undefined;
    }
    expect(github.refs.get('staging')).toBe(C3);
  }, 120_000);
});

describe('Odoo.sh production branch: PROD approval rules', () => {
  const statusOf = customStatusOf;
  const ledgerContainer = () =>
    BlobServiceClient.fromConnectionString(
      host.blobConnectionString ?? process.env.BACKUP_STORAGE_CONNECTION!,
    ).getContainerClient('ledger');
  async function decisionRecords(id: string): Promise<Array<Record<string, unknown>>> {
    const out: Array<Record<string, unknown>> = [];
    const c = ledgerContainer();
    for await (const b of c.listBlobsFlat({ prefix: `approvals/decisions/${id}/` }))
      out.push(
        JSON.parse((await c.getBlobClient(b.name).downloadToBuffer()).toString('utf8')) as Record<
          string,
          unknown
        >,
      );
    return out;
  }
  const slackTexts = () => slack.posts.map((p) => String(p.body.text ?? ''));

  it("asks PROD approvers (not the requester), refuses the requester's own approval, moves the branch after an approval through the link page, then waits for Odoo.sh", async () => {
    expect(github.refs.get('production')).toBe(C1);
    const r = await post(
      {
        target: 'odoosh',
        branch: 'production',
        version: '1.1.0',
        reason: 'release 1.1.0 to customers',
      },
      as('alice'),
    );
    expect(r.status).toBe(202);
    const id = String(r.body.id);
    expect(id).toBe(`deploy-odoosh-production-1.1.0-${C2.slice(0, 12)}`);

    // one signed link per allowed approver, posted to Slack; four-eyes: none for alice
    const links = await waitForLinks(slack.posts, id, 'approval', 60_000);
    expect(links.map((l) => l.approver).sort()).toEqual(['bob', 'carol']);
    const msg = slack.posts.find((p) => JSON.stringify(p.body).includes(links[0].token))!;
    expect(String(msg.body.text)).toContain(
      // the requester is who is signed in, named by their sign-in
      `${PEOPLE.alice.email} asks to move the Odoo.sh production branch production of acme/odoo-mta to 1.1.0`,
    );
    expect(JSON.stringify(msg.body.blocks)).toContain(`${C1.slice(0, 7)}…${C2.slice(0, 7)}`);
    expect(JSON.stringify(msg.body)).not.toContain(signingKey);

    // the approval contract: what the approval page, the status API and the CLI read
    const st = await until('awaiting approval', async () => {
      const now = await statusOf(id);
      return now?.step === 'awaiting-approval' ? now : undefined;
    });
    expect(st).toMatchObject({
      kind: 'deployOdooSh',
      environment: 'odoosh-production',
      requestedBy: PEOPLE.alice.email,
      approvals: { required: 1, received: [] },
      commitRange: { from: C1, to: C2 },
    });
    expect(st.pendingApprovals.map((p) => [p.approver, p.action]).sort()).toEqual([
      ['bob', 'approval'],
      ['carol', 'approval'],
    ]);
    expect(Date.parse(st.expiresAt!) - Date.now()).toBeGreaterThan(60 * 60_000); // APPROVAL_TIMEOUT_HOURS: 2
    expect(github.refs.get('production')).toBe(C1); // nothing moves before the approval

    // the status API lists the pending approvals (the CLI's `approvals` reads them), never a nonce
    const doc = (await (await fetch(`${host.baseUrl}/api/status`, { headers: key() })).json()) as {
      approvals?: { ok: boolean; value: Array<Record<string, unknown>> };
    };
    expect(doc.approvals?.ok).toBe(true);
    const mine = doc.approvals!.value.filter((a) => a.deployment === id);
    expect(
      mine.map((a) => [a.approver, a.environment, a.version, a.requestedBy, a.required, a.step]).sort(),
    ).toEqual([
      ['bob', 'odoosh-production', '1.1.0', PEOPLE.alice.email, 1, 'awaiting-approval'],
      ['carol', 'odoosh-production', '1.1.0', PEOPLE.alice.email, 1, 'awaiting-approval'],
    ]);
    expect(JSON.stringify(doc)).not.toContain(st.pendingApprovals[0].nonce);
    // and so does the dashboard, on a card of its own for the Odoo.sh branch
    const html = await (
      await fetch(`${host.baseUrl}/api/dashboard`, { headers: { 'x-status-key': STATUS_READ_KEY } })
    ).text();
    const card =
      /<article[^>]*data-environment="odoosh-production"[^>]*>([\s\S]*?)<\/article>/.exec(html)?.[1] ?? '';
    for (const text of ['Pending approvals', 'bob', 'carol', '1.1.0', `by ${PEOPLE.alice.email}`])
      expect(card).toContain(text);

    // the page says what is being approved
    const page = await (
      await fetch(links.find((l) => l.approver === 'bob')!.url, {
        headers: { accept: 'text/html', ...signedIn('bob') },
      })
    ).text();
    for (const text of [
      'Approve Odoo.sh production move of 1.1.0?',
      'odoosh-production',
      'acme/odoo-mta',
      'release 1.1.0 to customers',
      'alice',
      id,
    ])
      expect(page).toContain(text);
    expect(page).not.toContain('Approve PROD deploy');

    // four-eyes: the requester's approval (with a pending nonce) is refused and recorded
    const bobNonce = st.pendingApprovals.find((p) => p.approver === 'bob')!.nonce;
    expect(
      await host.durable.raiseEvent(id, 'approval-decision', {
        nonce: bobNonce,
        approver: 'alice',
        action: 'approve',
        decidedAt: new Date().toISOString(),
      }),
    ).toBe('accepted');
    await until('the refusal to be recorded', async () =>
      (await decisionRecords(id)).some((d) => d.verdict === 'refused') ? true : undefined,
    );
    expect(await statusOf(id)).toMatchObject({ step: 'awaiting-approval', approvals: { received: [] } });
    expect(github.refs.get('production')).toBe(C1);

    // bob approves on the page (GET, then POST the form with its CSRF pair)
    const decided = await decideByLink(links.find((l) => l.approver === 'bob')!.url, 'approve', {
      comment: 'go',
      ...signedIn('bob'),
    });
    expect(decided.status).toBe(200);
    await until('the production branch to move', () => github.refs.get('production') === C2);
    expect(github.refUpdates.at(-1)).toEqual({ branch: 'production', from: C1, to: C2, force: false });
    await until('waiting for odoo.sh', async () => (await statusOf(id))?.step === 'waiting-for-odoo.sh');
    setBuild(C2, 'production', 'success', 'https://acme.odoo.com/');
    const out = await outcomeOf(id);
    expect(out).toMatchObject({
      outcome: 'Succeeded',
      branch: 'production',
      stage: 'production',
      sha: C2,
      previousSha: C1,
      requestedBy: PEOPLE.alice.email,
      approvals: [{ approver: 'bob' }],
    });
    expect(out.decisions?.map((d) => [d.approver, d.verdict, d.why])).toEqual([
      ['alice', 'refused', 'four-eyes'],
      ['bob', 'accepted', undefined],
    ]);
    const records = await decisionRecords(id);
    expect(records.map((d) => [d.approver, d.verdict]).sort()).toEqual([
      ['alice', 'refused'],
      ['bob', 'accepted'],
    ]);
    expect(records.find((d) => d.approver === 'bob')).toMatchObject({ action: 'approve', comment: 'go' });
    expect(await createLedger(ledgerContainer()).current('odoosh-production')).toMatchObject({
      version: '1.1.0',
      sha: C2,
    });
    expect(
      slackTexts().some((t) =>
        t.startsWith('Odoo.sh production move approved: 1.1.0 → production (acme/odoo-mta)'),
      ),
    ).toBe(true);
    // the used link cannot decide again
    expect(
      (await decideByLink(links.find((l) => l.approver === 'bob')!.url, 'approve', signedIn('bob'))).status,
    ).toBe(409);
  }, 120_000);

  it('a reject leaves the branch untouched (Rejected); the same release can then be requested again', async () => {
    const moves = github.refUpdates.length;
    const r = await post(
      {
        target: 'odoosh',
        branch: 'production',
        version: '1.2.0',
        sha: P2,
        reason: 'release 1.2.0',
      },
      as('bob'),
    );
    expect(r.status).toBe(202);
    const id = String(r.body.id);
    const links = await waitForLinks(slack.posts, id, 'approval', 60_000);
    expect(links.map((l) => l.approver).sort()).toEqual(['alice', 'carol']);
    // a second request while this one waits is refused
    const busy = await post(
      {
        target: 'odoosh',
        branch: 'production',
        version: '1.2.0',
        sha: P2,
        reason: 'again',
      },
      as('bob'),
    );
    expect(busy.status).toBe(409);
    expect(busy.body.error).toBe('DEPLOYMENTS.BUSY');

    expect(
      (
        await decideByLink(links.find((l) => l.approver === 'carol')!.url, 'reject', {
          comment: 'not during the sale',
          ...signedIn('carol'),
        })
      ).status,
    ).toBe(200);
    const out = await outcomeOf(id);
    expect(out).toMatchObject({ outcome: 'Rejected', code: 'APPROVAL.REJECTED', previousSha: C2 });
    expect(out.reason).toContain('rejected by carol');
    expect(github.refs.get('production')).toBe(C2);
    expect(github.refUpdates.length).toBe(moves);
    expect((await decisionRecords(id)).map((d) => [d.approver, d.action, d.verdict])).toEqual([
      ['carol', 'reject', 'accepted'],
    ]);
    expect(
      slackTexts().some(
        (t) => t.includes('Odoo.sh production move rejected: 1.2.0') && t.includes('not during the sale'),
      ),
    ).toBe(true);

    // asking again after a rejection starts a new request (new id, new links); nobody decides on this
    // one: it is open 63 s (APPROVAL_TIMEOUT_HOURS 0.0175) and reminds 1 min before it expires
    const { again, links2, expired } = await withEnv(
      { APPROVAL_TIMEOUT_HOURS: '0.0175', APPROVAL_REMINDER_MINUTES: '1' },
      async () => {
        const again = await post(
          {
            target: 'odoosh',
            branch: 'production',
            version: '1.2.0',
            sha: P2,
            reason: 'sale is over',
          },
          as('bob'),
        );
        expect(again.status).toBe(202);
        expect(again.body.id).toBe(`${id}-r2`);
        const links2 = await waitForLinks(slack.posts, String(again.body.id), 'approval', 60_000);
        expect(links2.map((l) => l.token)).not.toEqual(links.map((l) => l.token));
        return { again, links2, expired: await outcomeOf(String(again.body.id), 63_000 + 60_000) };
      },
    );

    // expiry: a reminder before the deadline, then Expired and the branch untouched
    expect(expired).toMatchObject({ outcome: 'Expired', code: 'APPROVAL.EXPIRED', previousSha: C2 });
    const reminders = approvalLinks(slack.posts, String(again.body.id), 'reminder');
    expect(reminders.map((l) => l.approver).sort()).toEqual(['alice', 'carol']);
    expect(github.refs.get('production')).toBe(C2);
    expect(github.refUpdates.length).toBe(moves);
    const expiredNotice = slackTexts().findIndex((t) =>
      t.startsWith('Odoo.sh production move: approval expired (nothing moved): 1.2.0'),
    );
    expect(expiredNotice).toBeGreaterThanOrEqual(0);
    const reminded = slack.posts.findIndex((p) => JSON.stringify(p.body).includes(reminders[0].token));
    expect(reminded).toBeLessThan(expiredNotice);
    // an expired link's page says so
    expect((await fetch(links2[0].url, { headers: { accept: 'application/json' } })).status).toBe(410);
  }, 240_000);

  it('the branch moved while approvers decided: refused, nothing moved by the pipeline', async () => {
    const r = await post(
      {
        target: 'odoosh',
        branch: 'production',
        version: '1.3.0',
        sha: P3,
        reason: 'release 1.3.0',
      },
      as('carol'),
    );
    const id = String(r.body.id);
    const links = await waitForLinks(slack.posts, id, 'approval', 60_000);
    github.refs.set('production', P2); // someone pushed to the production branch meanwhile
    const moves = github.refUpdates.length;
    expect(
      (await decideByLink(links.find((l) => l.approver === 'alice')!.url, 'approve', signedIn('alice')))
        .status,
    ).toBe(200);
    const out = await outcomeOf(id);
    expect(out).toMatchObject({ outcome: 'Refused', code: 'ODOOSH.BRANCH_MOVED', previousSha: P2 });
    expect(github.refs.get('production')).toBe(P2);
    expect(github.refUpdates.length).toBe(moves);
  });

  it('not enough approvers once four-eyes removes the requester: Failed with APPROVAL.NOT_ENOUGH_APPROVERS, no links, branch untouched', async () => {
    process.env.APPROVALS_REQUIRED = '3';
    setOdooShPorts(undefined); // settings are read again on first use
    try {
      const before = github.refs.get('production');
      const posts = slack.posts.length;
      const r = await post(
        {
          target: 'odoosh',
          branch: 'production',
          version: '1.3.1',
          sha: P3,
          reason: 'release 1.3.1',
        },
        as('alice'),
      );
      expect(r.status).toBe(202);
      const out = await outcomeOf(String(r.body.id));
      expect(out).toMatchObject({ outcome: 'Failed', code: 'APPROVAL.NOT_ENOUGH_APPROVERS' });
      // in names people know (APPROVERS), not `entra:<object id>`
      expect(out.reason).toContain(
        '3 approvals needed but only 2 approvers may approve (Bob Dupont, Carol Nguyen); four-eyes: Alice Martin cannot approve their own request',
      );
      expect(out.reason).not.toContain(PEOPLE.alice.oid);
      expect(github.refs.get('production')).toBe(before);
      expect(approvalLinks(slack.posts.slice(posts), String(r.body.id))).toEqual([]);
    } finally {
      process.env.APPROVALS_REQUIRED = '1';
      setOdooShPorts(undefined);
    }
  });
});
