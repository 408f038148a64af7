/**
 * deployProd end to end: embedded host (real durable engine, the real HTTP routes) + the sandbox PROD VM
 * (real sshd, dockerd, docker-registry, PostgreSQL, the real odoo-ops; only Odoo is a stand-in) +
 * Azurite (backups, ledger, decision records, used-link markers), production wiring of every activity;
 * Slack and GitHub Deployments are local servers speaking their APIs.
 *
 * The story as people live it: someone POSTs /api/deployments for PROD → Slack receives one signed link
 * per approver → Slack's link expander fetches it (nothing happens) → an approver opens it and decides
 * on its page (POST /api/approvals/{token}) → PROD runs the version with the SAME image digest as UAT.
 * Then a release whose migration fails: PROD is left stopped, the rollback links reach Slack, and
 * deciding one restores the previous version with identical table checksums.
 *
 * UAT's success is taken from the ledger (seeded here as deployUat records it; deployUat itself is
 * covered by deploy-uat.test.ts), with the digest the registry really holds for `uat-vX.Y.Z`.
 * In CI (CI=true) these tests fail, not skip, when the sandbox cannot start.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLocalHost, type LocalHost } from '../../local/host';
import { freePort } from '../../local/azurite';
import { setDeployPorts } from '../../functions/activities/deploy';
import { setProdPorts } from '../../functions/activities/prod';
import type { ProdCustomStatus, ProdDeployResult } from '../../functions/orchestrators/deployProd';
import { BackupStore } from '../../shared/adapters/backup-store';
import { createLedger, ledgerContainer, type Ledger } from '../../shared/adapters/ledger';
import { createRegistryClient, type RegistryClient } from '../../shared/adapters/registry';
import { loadConfig } from '../../shared/config';
import {
  describeSandbox,
  Sandbox,
  SandboxVm,
  sandboxSettings,
  startSandbox,
  tableChecksums,
} from '../support/sandbox';
import { startFakeSlack, type FakeSlack } from '../support/fake-slack';
import { startFakeGitHubDeployments, type FakeGitHubDeployments } from '../support/fake-github-deployments';
import {
  decideByLink,
  requestProdDeploy,
  requestProdDeployAndLinks,
  waitForLinks,
} from '../support/prod-approval';
import { approversSetting, cookieOf, type Who } from '../support/identities';

jest.setTimeout(15 * 60 * 1000);

const SHA_INITIAL = '0'.repeat(40);
const SHA_NEXT = '1'.repeat(40);
const SHA_BROKEN = '2'.repeat(40);

describeSandbox('deployProd on the sandbox PROD VM', () => {
  let sb: Sandbox;
  let prod: SandboxVm;
  let host: LocalHost;
  let dir: string;
  let slack: FakeSlack;
  let gh: FakeGitHubDeployments;
  let registry: RegistryClient;
  let ledger: Ledger;
  const digests: Record<string, string> = {};

  /** the Cookie header of `who` signed in on the embedded host (requests and decisions are theirs) */
  const signedIn = (who: Who) => cookieOf(host.keys.masterKey, who);
  async function digest(tag: string): Promise<string | undefined> {
    return (await registry.resolve('odoo-mta', tag))?.digest;
  }
  async function waitForStep(id: string, step: string, timeoutMs = 10 * 60_000): Promise<ProdCustomStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const st = await host.durable.getStatus(id);
      const cs = st?.customStatus as ProdCustomStatus | undefined;
      if (cs?.step === step) return cs;
      if (st && ['Completed', 'Failed', 'Terminated'].includes(st.runtimeStatus))
        throw new Error(
          `${id} ended (${st.runtimeStatus}) before reaching ${step}: ${JSON.stringify(st.output).slice(0, 1500)}`,
        );
      if (Date.now() > deadline) throw new Error(`${id} did not reach ${step} (now ${cs?.step})`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  beforeAll(
    async () => {
      sb = await startSandbox({ vms: ['prod'] });
      prod = sb.vm('prod');
      slack = await startFakeSlack();
      gh = await startFakeGitHubDeployments('acme/odoo-mta');
      dir = mkdtempSync(path.join(os.tmpdir(), 'deploy-prod-e2e-'));
      setDeployPorts(undefined);
      setProdPorts(undefined); // production wiring from settings
      const port = await freePort();
      host = await startLocalHost({
        dataDir: dir,
        port,
        env: {
          ...sandboxSettings(sb),
          LOG_LEVEL: 'warn',
          PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
          APPROVAL_SIGNING_KEY: randomBytes(32).toString('base64url'),
          APPROVERS: approversSetting('alice', 'bob', 'carol'),
          APPROVALS_REQUIRED: '1',
          FOUR_EYES: 'true',
          PROD_AUTO_ROLLBACK: 'false',
          PROD_HEALTH_STABLE_SECONDS: '3',
          HEALTH_TIMEOUT_SECONDS: '30',
          HEALTH_KEY_URLS: '/web/health',
          MIN_FREE_DISK_GB: '0.1',
          DEPLOY_RETRY_FIRST_SECONDS: '0.5',
          DEPLOY_RETRY_ATTEMPTS: '3',
          GITHUB_REPOSITORY: gh.repository,
          GITHUB_API_URL: gh.url,
          GITHUB_TOKEN: gh.token,
          // approval links go privately to each approver's Slack user id (chat.postMessage)
          SLACK_BOT_TOKEN: slack.token,
          SLACK_API_URL: slack.apiUrl,
        },
      });
      const config = loadConfig(process.env);
      registry = createRegistryClient({ kind: 'oci', url: config.REGISTRY_URL! });
      ledger = createLedger(ledgerContainer(config));
      // the sandbox pushes prod-v tags of every release: remove the ones this test promotes
      for (const v of ['1.1.0', '1.2.0']) await registry.deleteTag('odoo-mta', `prod-v${v}`);
      for (const t of ['uat-v1.0.0', 'prod-v1.0.0', 'uat-v1.1.0', 'uat-v1.2.0'])
        digests[t] = (await digest(t))!;
      expect(await digest('prod-v1.1.0')).toBeUndefined();
      expect(digests['uat-v1.1.0']).toMatch(/^sha256:/);
      // what deployUat records on success, and what PROD ran before (its first install)
      const at = new Date().toISOString();
      await ledger.record('prod', {
        version: '1.0.0',
        sha: SHA_INITIAL,
        imageRef: sb.image('initial', 'prod'),
        imageDigest: digests['prod-v1.0.0'],
        deployedAt: at,
      });
      await ledger.record('uat', {
        version: '1.1.0',
        sha: SHA_NEXT,
        imageRef: sb.image('next', 'uat'),
        imageDigest: digests['uat-v1.1.0'],
        coverage: 90,
        deployedAt: at,
        instanceId: `deploy-uat-1.1.0-${SHA_NEXT.slice(0, 12)}`,
      });
      await ledger.record('uat', {
        version: '1.2.0',
        sha: SHA_BROKEN,
        imageRef: sb.image('brokenMigration', 'uat'),
        imageDigest: digests['uat-v1.2.0'],
        coverage: 90,
        deployedAt: at,
      });
    },
    30 * 60 * 1000,
  ); // the sandbox is one per machine: waiting for another suite's turn counts here
  afterAll(async () => {
    await host?.stop();
    setProdPorts(undefined);
    await slack?.stop();
    await gh?.stop();
    await sb?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('bad requests are refused with a clear reason and start nothing', async () => {
    const key = host.keys.functionKey;
    const bad = await requestProdDeploy(host.baseUrl, key, {
      version: 'latest',
      requestedBy: '',
      reason: '',
    });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: 'DEPLOYMENTS.BAD_REQUEST' });
    expect(String(bad.body.message)).toMatch(/version.*requestedBy.*reason/);
    const notOnUat = await requestProdDeploy(host.baseUrl, key, {
      version: '1.3.0',
      requestedBy: 'alice',
      reason: 'hotfix',
    });
    expect(notOnUat.status).toBe(422);
    expect(notOnUat.body).toMatchObject({ error: 'DEPLOYMENTS.NOT_ON_UAT' });
    expect(String(notOnUat.body.message)).toContain('has not succeeded on UAT');
    await ledger.record('uat', {
      version: '9.9.9',
      sha: '9'.repeat(40),
      imageRef: `${sb.registry}/odoo-mta:uat-v9.9.9`,
      deployedAt: new Date().toISOString(),
    });
    const noImage = await requestProdDeploy(host.baseUrl, key, {
      version: '9.9.9',
      requestedBy: 'alice',
      reason: 'hotfix',
    });
    expect(noImage.status).toBe(422);
    expect(noImage.body).toMatchObject({ error: 'DEPLOYMENTS.IMAGE_MISSING' });
    const noKey = await fetch(`${host.baseUrl}/api/deployments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ environment: 'prod', version: '1.1.0', requestedBy: 'alice', reason: 'x' }),
    });
    expect(noKey.status).toBe(401);
    expect(
      (await host.durable.listInstances({})).instances.filter((s) => s.name === 'deployProd'),
    ).toHaveLength(0);
  });

  it('request → Slack links → Slack prefetch decides nothing → approve on the page → PROD runs the UAT digest', async () => {
    const { id, links } = await requestProdDeployAndLinks({
      baseUrl: host.baseUrl,
      functionKey: host.keys.functionKey,
      slackPosts: slack.posts,
      version: '1.1.0',
      requestedBy: 'alice',
      cookie: signedIn('alice'),
      reason: 'release 1.1.0',
    });
    expect(id).toBe(`deploy-prod-1.1.0-${SHA_NEXT.slice(0, 12)}`);
    expect(links.map((l) => l.approver).sort()).toEqual(['bob', 'carol']); // four-eyes: none for alice
    const msg = slack.posts.find((p) => JSON.stringify(p.body).includes(links[0].token))!;
    expect(msg.body).toMatchObject({ unfurl_links: false, unfurl_media: false });
    expect(JSON.stringify(msg.body)).toContain(`${SHA_INITIAL.slice(0, 7)}…${SHA_NEXT.slice(0, 7)}`);

    // Slack's link expander fetches every posted link: GET and HEAD render, never decide
    for (const method of ['GET', 'HEAD']) {
      const res = await fetch(links[0].url, {
        method,
        headers: { 'user-agent': 'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)' },
      });
      expect(res.status).toBe(200);
    }
    const waiting = await waitForStep(id, 'awaiting-approval');
    expect(waiting.approvals.received).toEqual([]);
    expect(waiting.pendingApprovals).toHaveLength(2);

    const bob = links.find((l) => l.approver === 'bob')!;
    const decided = await decideByLink(bob.url, 'approve', {
      comment: 'checked on UAT',
      cookie: signedIn('bob'),
    });
    expect(decided.status).toBe(200);
    // the same link again: already used
    expect((await decideByLink(bob.url, 'approve', { cookie: signedIn('bob') })).status).toBe(409);

    const st = await host.durable.waitForCompletion(id, 10 * 60_000);
    const result = st.output as ProdDeployResult;
    expect(result).toMatchObject({
      outcome: 'Succeeded',
      prodState: 'running-new',
      approvals: [{ approver: 'bob' }],
    });
    expect(result.decisions[0]).toMatchObject({
      approver: 'bob',
      action: 'approve',
      verdict: 'accepted',
      comment: 'checked on UAT',
    });
    // the same bytes as UAT: prod-v1.1.0 is uat-v1.1.0's manifest, and that is what PROD runs
    expect(await digest('prod-v1.1.0')).toBe(digests['uat-v1.1.0']);
    expect(result.imageDigest).toBe(digests['uat-v1.1.0']);
    const cur = await prod.opsJson('current');
    expect(cur.json.image).toBe(sb.image('next', 'prod'));
    const inspect = await sb.docker([
      'image',
      'inspect',
      '--format',
      '{{join .RepoDigests " "}}',
      sb.image('next', 'prod'),
    ]);
    expect(inspect.stdout.toString()).toContain(digests['uat-v1.1.0']);
    expect((await prod.opsJson('health')).json.ok).toBe(true);
    expect(await ledger.current('prod')).toMatchObject({
      version: '1.1.0',
      sha: SHA_NEXT,
      imageDigest: digests['uat-v1.1.0'],
      previousVersion: '1.0.0',
    });
    // the backup taken before: DB + filestore + the running image reference, verified
    const config = loadConfig(process.env);
    const backups = new BackupStore({
      connectionString: config.BACKUP_STORAGE_CONNECTION!,
      container: config.BACKUP_CONTAINER,
    });
    const v = await backups.verify(result.backupId!);
    expect(v.ok).toBe(true);
    expect(Object.keys(v.manifest!.parts).sort()).toEqual(['db.dump', 'filestore.tar', 'image.json']);
    expect(v.manifest).toMatchObject({ runningImage: sb.image('initial', 'prod') });
    const d = gh.deployments.find((x) => x.ref === SHA_NEXT && x.environment === 'prod')!;
    expect(d.statuses.map((s) => s.state)).toEqual(['in_progress', 'success']);
    expect(
      slack.posts.some(
        (p) => JSON.stringify(p.body).includes('Deployed') && JSON.stringify(p.body).includes('1.1.0 → PROD'),
      ),
    ).toBe(true);
    // the deployments API lists and shows it
    const api = await fetch(`${host.baseUrl}/api/deployments/${id}`, {
      headers: { 'x-functions-key': host.keys.functionKey },
    });
    expect(api.status).toBe(200);
    expect(await api.json()).toMatchObject({
      id,
      outcome: 'Succeeded',
      environment: 'prod',
      version: '1.1.0',
    });
    const list = (await (
      await fetch(`${host.baseUrl}/api/deployments?environment=prod`, {
        headers: { 'x-functions-key': host.keys.functionKey },
      })
    ).json()) as { items: Array<{ id: string }> };
    expect(list.items.map((i) => i.id)).toContain(id);
  });

  it('a failing PROD migration leaves PROD stopped, posts rollback links, and the link restores the previous version with identical tables', async () => {
    const before = await tableChecksums(prod);
    const { id, links } = await requestProdDeployAndLinks({
      baseUrl: host.baseUrl,
      functionKey: host.keys.functionKey,
      slackPosts: slack.posts,
      version: '1.2.0',
      requestedBy: 'bob',
      cookie: signedIn('bob'),
      reason: 'release 1.2.0',
    });
    expect(links.map((l) => l.approver).sort()).toEqual(['alice', 'carol']);
    expect(
      (
        await decideByLink(links.find((l) => l.approver === 'carol')!.url, 'approve', {
          cookie: signedIn('carol'),
        })
      ).status,
    ).toBe(200);

    const failed = await waitForStep(id, 'awaiting-rollback-decision');
    expect(failed).toMatchObject({ prodState: 'stopped' });
    expect(failed.failure).toContain('MIGRATION_FAILED');
    const rollbackLinks = await waitForLinks(slack.posts, id, 'rollback');
    expect(rollbackLinks.map((l) => l.approver).sort()).toEqual(['alice', 'bob', 'carol']);
    const status = await prod.opsJson('status');
    expect(status.json.web_state).not.toBe('running');
    expect((await prod.opsJson('health')).json.ok).not.toBe(true);

    // the approval link of this deploy is spent; the rollback link decides
    expect(
      (
        await decideByLink(links.find((l) => l.approver === 'alice')!.url, 'approve', {
          cookie: signedIn('alice'),
        })
      ).status,
    ).toBe(409);
    const rb = await decideByLink(rollbackLinks.find((l) => l.approver === 'alice')!.url, 'rollback', {
      comment: 'roll back',
      cookie: signedIn('alice'),
    });
    expect(rb.status).toBe(200);

    const st = await host.durable.waitForCompletion(id, 10 * 60_000);
    const result = st.output as ProdDeployResult;
    expect(result).toMatchObject({
      outcome: 'RolledBack',
      failedStep: 'migrate',
      code: 'DEPLOY.MIGRATION_FAILED',
      prodState: 'rolled-back',
      rollback: { by: 'alice', auto: false, ok: true },
    });
    expect(await tableChecksums(prod)).toEqual(before);
    expect((await prod.opsJson('current')).json.image).toBe(sb.image('next', 'prod'));
    expect((await prod.opsJson('health')).json.ok).toBe(true);
    expect((await ledger.current('prod'))?.version).toBe('1.1.0');
    expect(result.logs).toEqual(expect.arrayContaining([`${result.backupId}/logs/migration.log`]));
    const d = gh.deployments.find((x) => x.ref === SHA_BROKEN && x.environment === 'prod')!;
    expect(d.statuses.map((s) => s.state)).toContain('failure');
  });
});
