/**
 * The Odoo.sh target end to end through the embedded host: `POST /api/deployments` with
 * `"target": "odoosh"` → the branch's lane → `deployOdooSh` → the real Octokit adapter moving the
 * tracked branch on a local server that speaks GitHub's refs/compare/statuses API (with GitHub's own
 * fast-forward rule) → waiting for `ci/odoo.sh (<stage>)` on durable timers driven by a test clock.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { startLocalHost, type LocalHost } from '../../local/host';
import { TestClock } from '../../local/durable/clock';
import { createLedger } from '../../shared/adapters/ledger';
import { resetDefaultIntake } from '../../functions/activities/intake';
import { setOdooShPorts } from '../../functions/activities/odoosh';
import type { OdooShResult } from '../../shared/domain/odoosh';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github';

const REPO = 'acme/odoo-mta';
const sha = (c: string) => c.repeat(40).slice(0, 40);
const C1 = sha('1'); // staging + production heads at the start
const C2 = sha('2'); // child of C1 (gate passed)
const C3 = sha('3'); // child of C2 (gate passed)
const X = sha('e'); // child of C1, diverged from C2/C3 (gate passed)
const NOGATE = sha('4'); // child of C3, no gate status, never on UAT
const FAIL = sha('5'); // child of C3 (gate passed), Odoo.sh build fails
const SLOW = sha('6'); // child of C3 (gate passed), Odoo.sh never answers

const saved = { ...process.env };
let host: LocalHost;
let github: FakeGitHub;
let clock: TestClock;
let tmp: string;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'odoosh-'));
  github = await startFakeGitHub(REPO);
  github.addCommit(C1);
  github.addCommit(C2, C1);
  github.addCommit(C3, C2);
  github.addCommit(X, C1);
  github.addCommit(NOGATE, C3);
  github.addCommit(FAIL, C3);
  github.addCommit(SLOW, C3);
  github.refs.set('staging', C1);
  github.refs.set('production', C1);
  for (const c of [C2, C3, X, FAIL, SLOW]) github.statuses.set(c, [{ context: 'deploy/uat', state: 'success', description: 'coverage 85.0 % ≥ 80 %' }]);
  clock = new TestClock(Date.UTC(2026, 10, 27, 9, 0, 0));
  host = await startLocalHost({
    dataDir: tmp,
    port: 0,
    clock,
    functionsDir: path.join(__dirname, '..', 'fixtures', 'odoosh-app'),
    log: { debug() {}, info() {}, warn() {}, error() {}, child() { return this; } },
    env: {
      GITHUB_REPOSITORY: REPO,
      GITHUB_TOKEN: 'ghs_odooshtest_token_value',
      GITHUB_API_URL: github.url,
      GITHUB_WEBHOOK_SECRET: 'odoosh-test-webhook-secret',
      ODOOSH_REPOSITORY: REPO,
      ODOOSH_BRANCHES: 'staging:staging,production:production,preview:dev',
      ODOOSH_WAIT_MINUTES: '60',
      DEPLOY_QUEUE_NAME: 'deploy-requests',
      LOG_LEVEL: 'error',
    },
  });
  // UAT ran 1.1.0 at C2: a deploy by version alone finds its commit there
  const container = BlobServiceClient.fromConnectionString(host.blobConnectionString ?? process.env.BACKUP_STORAGE_CONNECTION!).getContainerClient('ledger');
  await createLedger(container).record('uat', { version: '1.1.0', sha: C2, deployedAt: '2026-11-26T10:00:00.000Z' });
}, 60000);

afterAll(async () => {
  setOdooShPorts(undefined);
  resetDefaultIntake();
  await host?.stop();
  await github?.stop();
  process.env = saved;
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const key = () => ({ 'x-functions-key': host.keys.functionKey, 'content-type': 'application/json' });
async function post(body: unknown, headers: Record<string, string> = key()): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${host.baseUrl}/api/deployments`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** wait (in real time) for a condition, moving the test clock `stepMs` at each look */
async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, stepMs = 0): Promise<T> {
  const deadline = Date.now() + 30000;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    if (stepMs) await clock.advance(stepMs);
    await new Promise((r) => setTimeout(r, 40));
  }
}
async function outcomeOf(id: string, stepMs = 5000): Promise<OdooShResult> {
  return until(`${id} to end`, () => {
    const s = host.engine.getStatus(id);
    return s && ['Completed', 'Failed'].includes(s.runtimeStatus) ? (s.output as OdooShResult) : undefined;
  }, stepMs);
}
const setBuild = (c: string, stage: string, state: 'success' | 'failure' | 'pending', target_url?: string) =>
  github.statuses.set(c, [...(github.statuses.get(c) ?? []).filter((s) => s.context !== `ci/odoo.sh (${stage})`), { context: `ci/odoo.sh (${stage})`, state, description: `build ${state}`, target_url }]);

describe('Odoo.sh target', () => {
  it('refuses bad requests with clear errors, and needs the function key', async () => {
    expect((await post({ target: 'odoosh', branch: 'staging', version: '1.1.0' }, { 'content-type': 'application/json' })).status).toBe(401);
    const cases: Array<[unknown, number, string]> = [
      ['{not json', 400, 'DEPLOYMENTS.BAD_JSON'],
      [{ target: 'heroku', branch: 'staging', version: '1.1.0' }, 400, 'DEPLOYMENTS.BAD_REQUEST'],
      [{ target: 'odoosh', version: '1.1.0' }, 400, 'DEPLOYMENTS.BAD_REQUEST'],
      [{ target: 'odoosh', branch: 'staging', version: 'v1' }, 400, 'DEPLOYMENTS.BAD_REQUEST'],
      [{ target: 'odoosh', branch: 'staging', version: '1.1.0', sha: 'ABC' }, 400, 'DEPLOYMENTS.BAD_REQUEST'],
      [{ target: 'odoosh', branch: 'staging', version: '1.1.0', force: 'yes' }, 400, 'DEPLOYMENTS.BAD_REQUEST'],
      [{ target: 'odoosh', branch: 'main', version: '1.1.0' }, 400, 'DEPLOYMENTS.UNKNOWN_BRANCH'],
      [{ target: 'odoosh', branch: 'staging', version: '9.9.9' }, 422, 'DEPLOYMENTS.UNKNOWN_VERSION'],
    ];
    for (const [body, status, error] of cases) {
      const r = await post(body);
      expect({ body, status: r.status, error: r.body.error }).toEqual({ body, status, error });
      expect(String(r.body.message)).not.toMatch(/ghs_/);
    }
    expect(github.refUpdates).toEqual([]);
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
    await until('waiting for odoo.sh', () => (host.engine.getStatus(id)?.customStatus as { step?: string } | undefined)?.step === 'waiting-for-odoo.sh');
    setBuild(C2, 'staging', 'success', 'https://acme-staging.odoo.com/');
    const out = await outcomeOf(id, 30_000);
    expect(out).toMatchObject({ outcome: 'Succeeded', branch: 'staging', version: '1.1.0', sha: C2, previousSha: C1, targetUrl: 'https://acme-staging.odoo.com/' });
    const container = BlobServiceClient.fromConnectionString(host.blobConnectionString ?? process.env.BACKUP_STORAGE_CONNECTION!).getContainerClient('ledger');
    expect(await createLedger(container).current('odoosh-staging')).toMatchObject({ version: '1.1.0', sha: C2, branch: 'staging' });
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
    expect(await outcomeOf(String(forced.body.id), 30_000)).toMatchObject({ outcome: 'Succeeded', sha: X, previousSha: C3 });
  });

  it('refuses a commit that did not pass the gate, and moves nothing', async () => {
    const before = github.refUpdates.length;
    const r = await post({ target: 'odoosh', branch: 'staging', version: '1.4.0', sha: NOGATE });
    const out = await outcomeOf(String(r.body.id));
    expect(out).toMatchObject({ outcome: 'Refused', code: 'ODOOSH.GATE_NOT_PASSED' });
    expect(out.reason).toContain('deploy/uat');
    expect(github.refUpdates.length).toBe(before);
  });

  it("reports Odoo.sh's failed build with its URL", async () => {
    github.refs.set('staging', C3);
    const r = await post({ target: 'odoosh', branch: 'staging', version: '1.5.0', sha: FAIL });
    await until('the move', () => github.refs.get('staging') === FAIL);
    setBuild(FAIL, 'staging', 'failure', 'https://www.odoo.sh/project/acme/branches/staging/builds/42');
    const out = await outcomeOf(String(r.body.id), 30_000);
    expect(out).toMatchObject({ outcome: 'Failed', code: 'ODOOSH.BUILD_FAILED', targetUrl: 'https://www.odoo.sh/project/acme/branches/staging/builds/42' });
    expect(out.reason).toContain('builds/42');
  });

  it('times out when Odoo.sh never reports, after ODOOSH_WAIT_MINUTES', async () => {
    github.refs.set('staging', C3);
    const r = await post({ target: 'odoosh', branch: 'staging', version: '1.6.0', sha: SLOW });
    await until('the move', () => github.refs.get('staging') === SLOW);
    setBuild(SLOW, 'staging', 'pending');
    const out = await outcomeOf(String(r.body.id), 5 * 60_000);
    expect(out).toMatchObject({ outcome: 'TimedOut', code: 'ODOOSH.TIMEOUT' });
    expect(out.reason).toContain('after 60 min');
    expect(out.waitedMs).toBeGreaterThanOrEqual(60 * 60_000);
  });

  it('creates a missing dev-stage branch at the release commit; never a missing production branch', async () => {
    const r = await post({ target: 'odoosh', branch: 'preview', version: '1.1.0', sha: C3 });
    expect(r.status).toBe(202);
    await until('the branch to be created', () => github.refs.get('preview') === C3);
    expect(github.refUpdates.at(-1)).toEqual({ branch: 'preview', to: C3, force: false });
    setBuild(C3, 'dev', 'success');
    expect(await outcomeOf(String(r.body.id), 30_000)).toMatchObject({ outcome: 'Succeeded', branch: 'preview', stage: 'dev' });

    // production branches need PROD approvals, which this target does not offer yet: refused, nothing moves
    const p = await post({ target: 'odoosh', branch: 'production', version: '1.1.0', sha: C3 });
    expect(p.status).toBe(422);
    expect(p.body.error).toBe('ODOOSH.APPROVAL_UNAVAILABLE');
    expect(github.refs.get('production')).toBe(C1);
  });

  it('GitHub unreachable: retried, then Failed with a coded reason and no token in it', async () => {
    github.refs.set('staging', C3);
    github.failWith = 503;
    try {
      const r = await post({ target: 'odoosh', branch: 'staging', version: '1.1.0', sha: C2, force: true });
      expect(r.status).toBe(202);
      const out = await outcomeOf(String(r.body.id), 5000);
      expect(out).toMatchObject({ outcome: 'Failed', code: 'GITHUB.UNAVAILABLE' });
      expect(out.reason).not.toMatch(/ghs_/);
    } finally {
      github.failWith = undefined;
    }
    expect(github.refs.get('staging')).toBe(C3);
  });
});
