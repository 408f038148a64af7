/**
 * Attacks on the coverage gate, tried as an attacker with write access to the Odoo repository would
 * (issue #15, "the gate trusts only CI"): the real intake (functions/activities/intake.ts) on Azurite,
 * the real local queue, and a fake GitHub speaking GitHub's REST protocol behind the real Octokit
 * adapter. Each test fails on an intake that trusts any `coverage` status, any workflow of the right
 * name, or a replayed body with a fresh X-GitHub-Delivery.
 */
import type { HttpResponseInit } from '@azure/functions';
import { CI_APP } from '../support/fake-github';
import { pushTo, statusEventFor, workflowRunFor } from '../support/github-events';
import {
  ctx,
  makeRig,
  mergeOnDefaultBranch,
  QUEUE,
  RIG_SETTINGS,
  Rig,
  signedRequest,
  intakeServicesForFile,
} from '../support/intake-rig';

const svc = intakeServicesForFile();

let shaN = 0;
const newSha = () => ('5ec' + (++shaN).toString(16).padStart(5, '0')).repeat(5);
const body = (r: HttpResponseInit) => r.jsonBody as Record<string, unknown>;
const queued = (sha: string) => svc.queue.peek(QUEUE).filter((m) => (m.body as { sha?: string }).sha === sha);
const mallory = { login: 'mallory', id: 6660666, type: 'User' };

describe('the coverage status counts only from the CI source, and only when it succeeded', () => {
  let rig: Rig;
  beforeAll(() => {
    rig = makeRig(svc);
  });

  it('a "99 %" coverage status posted by another user does not pass the gate, and the block names who posted it', async () => {
    const sha = newSha();
    svc.github.setVersion(sha, '3.0.0');
    svc.github.setCoverage(sha, 'Coverage: 99.0 % of lines', 'success', mallory);
    const res = await rig.intake.handle(signedRequest('push', pushTo(sha)), ctx());
    expect(body(res)).toMatchObject({
      decision: 'blocked',
      reason: "coverage status from user 'mallory', not the CI source (github-actions[bot])",
    });
    expect(queued(sha)).toHaveLength(0);
    expect(svc.github.posted.filter((p) => p.sha === sha).at(-1)).toMatchObject({
      state: 'failure',
      context: 'deploy/uat',
    });
  });

  it('a CI status in state failure reading "99 %" blocks, naming the state', async () => {
    const sha = newSha();
    svc.github.setVersion(sha, '3.0.1');
    svc.github.setCoverage(sha, 'Coverage: 99 %', 'failure');
    const res = await rig.intake.handle(signedRequest('push', pushTo(sha)), ctx());
    expect(body(res)).toMatchObject({
      decision: 'blocked',
      reason: 'coverage status state failure: "Coverage: 99 %"',
    });
    expect(queued(sha)).toHaveLength(0);
  });

  it("a newer forged status beside CI's real one is ignored: CI's 70 % blocks", async () => {
    const sha = newSha();
    svc.github.setVersion(sha, '3.0.2');
    svc.github.setCoverage(sha, 'Coverage: 70.0 %');
    svc.github.addStatus(sha, {
      context: 'coverage',
      state: 'success',
      description: 'Coverage: 99.0 %',
      creator: mallory,
      updated_at: '2099-01-01T00:00:00Z',
    });
    const res = await rig.intake.handle(signedRequest('push', pushTo(sha)), ctx());
    expect(body(res)).toMatchObject({ decision: 'blocked', reason: 'coverage 70.0 % < 80 %' });
    expect(queued(sha)).toHaveLength(0);
  });

  it('a coverage check run created by another GitHub App does not pass the gate', async () => {
    const sha = newSha();
    svc.github.setVersion(sha, '3.0.3');
    svc.github.checkRuns.set(sha, [
      {
        name: 'coverage',
        status: 'completed',
        conclusion: 'success',
        completed_at: '2026-11-27T11:00:00Z',
        output: { title: 'Coverage 99.9%' },
        app: { id: 424242, slug: 'evil-app' },
      },
    ]);
    const res = await rig.intake.handle(signedRequest('push', pushTo(sha)), ctx());
    expect(body(res)).toMatchObject({
      decision: 'blocked',
      reason: `coverage check run from app 'evil-app' (id 424242), not the CI source (app ${CI_APP.id})`,
    });
    expect(queued(sha)).toHaveLength(0);
  });

  it('a CI check run that concluded failure blocks, naming the conclusion', async () => {
    const sha = newSha();
    svc.github.setVersion(sha, '3.0.4');
    svc.github.checkRuns.set(sha, [
      {
        name: 'coverage',
        status: 'completed',
        conclusion: 'failure',
        completed_at: '2026-11-27T11:00:00Z',
        output: { title: 'Coverage 95%' },
      },
    ]);
    const res = await rig.intake.handle(signedRequest('push', pushTo(sha)), ctx());
    expect(body(res)).toMatchObject({
      decision: 'blocked',
      reason: 'coverage check run concluded failure: "Coverage 95%"',
    });
  });
});

describe('workflow_run is trusted by workflow file, trigger and branch, not by name', () => {
  let rig: Rig;
  beforeAll(() => {
    rig = makeRig(svc, { settings: { ...RIG_SETTINGS, triggerEvent: 'workflow_run' } });
  });
  const ready = (sha: string) => {
    svc.github.setCoverage(sha, '90%');
    svc.github.setVersion(sha, '4.0.0');
  };

  it('a workflow named like the image workflow but in another file (.github/workflows/evil.yml) is not a merge', async () => {
    const sha = newSha();
    ready(sha);
    mergeOnDefaultBranch(svc.github, sha);
    const evil = workflowRunFor(sha);
    evil.workflow_run.path = '.github/workflows/evil.yml';
    evil.workflow.path = '.github/workflows/evil.yml';
    const res = await rig.intake.handle(signedRequest('workflow_run', evil), ctx());
    expect(body(res)).toMatchObject({
      decision: 'ignored',
      reason: 'workflow file .github/workflows/evil.yml is not the image workflow .github/workflows/test.yml',
    });
    expect(queued(sha)).toHaveLength(0);
  });

  it.each(['workflow_dispatch', 'pull_request_target', 'schedule', 'repository_dispatch'])(
    'an image build run by %s (not a push) is not a merge',
    async (event) => {
      const sha = newSha();
      ready(sha);
      mergeOnDefaultBranch(svc.github, sha);
      const run = workflowRunFor(sha);
      run.workflow_run.event = event;
      const res = await rig.intake.handle(signedRequest('workflow_run', run), ctx());
      expect(body(res)).toMatchObject({
        decision: 'ignored',
        reason: `workflow_run triggered by ${event}, not push`,
      });
      expect(queued(sha)).toHaveLength(0);
    },
  );

  it('a build of a tag named like the default branch (head_branch "master", commit not on master) is not a merge', async () => {
    const sha = newSha();
    ready(sha);
    // the commit exists (pushed under refs/tags/master) but the master branch does not contain it
    mergeOnDefaultBranch(svc.github, newSha());
    svc.github.addCommit(sha, undefined);
    const res = await rig.intake.handle(signedRequest('workflow_run', workflowRunFor(sha)), ctx());
    expect(body(res)).toMatchObject({
      decision: 'ignored',
      reason: `commit ${sha.slice(0, 7)} is not on the default branch master`,
    });
    expect(queued(sha)).toHaveLength(0);
    expect((await rig.intake.list(1))[0]).toMatchObject({ decision: 'ignored', sha });
  });

  it('the real image build of a commit on master passes (the rules above refuse only what they should)', async () => {
    const sha = newSha();
    ready(sha);
    mergeOnDefaultBranch(svc.github, sha);
    const res = await rig.intake.handle(signedRequest('workflow_run', workflowRunFor(sha)), ctx());
    expect(body(res)).toMatchObject({ decision: 'accepted', version: '4.0.0' });
    expect(queued(sha)).toHaveLength(1);
  });
});

describe('replays: a blocked commit is evaluated again only on a new event', () => {
  it('a push body of a blocked merge, re-sent with a new delivery id after a good status appeared, is refused as a replay', async () => {
    const rig = makeRig(svc);
    const sha = newSha();
    svc.github.setVersion(sha, '5.0.0');
    svc.github.setCoverage(sha, '70%');
    const payload = pushTo(sha);
    expect(body(await rig.intake.handle(signedRequest('push', payload), ctx()))).toMatchObject({
      decision: 'blocked',
    });
    svc.github.setCoverage(sha, '95%');
    // the status event itself does not reopen a blocked commit
    expect(
      body(await rig.intake.handle(signedRequest('status', statusEventFor(sha, 'coverage', '95%')), ctx())),
    ).toMatchObject({ decision: 'ignored' });
    const replay = await rig.intake.handle(signedRequest('push', payload), ctx());
    expect(replay.status).toBe(200);
    expect(body(replay)).toMatchObject({
      decision: 'replay',
      reason: `push of ${sha.slice(0, 7)} was already evaluated (blocked: coverage 70.0 % < 80 %); only a new event re-runs the gate`,
    });
    expect(queued(sha)).toHaveLength(0);
    // GET /api/deliveries shows it
    expect((await rig.intake.list(1))[0]).toMatchObject({ decision: 'replay', sha, event: 'push' });
  });

  it('a workflow_run body replayed with a new delivery id is refused; a re-run (new attempt) of the build is evaluated', async () => {
    const rig = makeRig(svc, { settings: { ...RIG_SETTINGS, triggerEvent: 'workflow_run' } });
    const sha = newSha();
    mergeOnDefaultBranch(svc.github, sha);
    svc.github.setVersion(sha, '5.1.0');
    svc.github.setCoverage(sha, '70%');
    const first = workflowRunFor(sha, 777001, 1);
    expect(body(await rig.intake.handle(signedRequest('workflow_run', first), ctx()))).toMatchObject({
      decision: 'blocked',
    });
    svc.github.setCoverage(sha, '95%');
    const replay = await rig.intake.handle(signedRequest('workflow_run', first), ctx());
    expect(body(replay)).toMatchObject({
      decision: 'replay',
      reason: expect.stringContaining('workflow run 777001 attempt 1 was already evaluated'),
    });
    expect(queued(sha)).toHaveLength(0);
    const rerun = await rig.intake.handle(
      signedRequest('workflow_run', workflowRunFor(sha, 777001, 2)),
      ctx(),
    );
    expect(body(rerun)).toMatchObject({ decision: 'accepted', version: '5.1.0' });
    expect(queued(sha)).toHaveLength(1);
  });
});
