/**
 * deployUat end to end: embedded host (real durable engine) + sandbox UAT VM (real sshd, dockerd,
 * registry, PostgreSQL, the real odoo-ops; only Odoo is a stand-in) + Azurite (backups, ledger, logs),
 * with the production wiring of the activities (deployPortsFromConfig); GitHub Deployments and Slack are
 * local servers speaking their APIs. In CI (CI=true) these tests fail, not skip, when the sandbox cannot start.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLocalHost, type LocalHost } from '../../local/host';
import { setDeployPorts } from '../../functions/activities/deploy';
import '../../functions/orchestrators/deployUat';
import { BackupStore } from '../../shared/adapters/backup-store';
import { createLedger, ledgerContainer } from '../../shared/adapters/ledger';
import { loadConfig } from '../../shared/config';
import type { DeployResult } from '../../shared/domain/deploy-plan';
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

jest.setTimeout(15 * 60 * 1000);

describeSandbox('deployUat on the sandbox UAT VM', () => {
  let sb: Sandbox;
  let uat: SandboxVm;
  let host: LocalHost;
  let dir: string;
  let slack: FakeSlack;
  let gh: FakeGitHubDeployments;
  const SHA1 = '1'.repeat(40);
  const SHA2 = '2'.repeat(40);

  beforeAll(async () => {
    sb = await startSandbox({ vms: ['uat'] });
    uat = sb.vm('uat');
    slack = await startFakeSlack();
    gh = await startFakeGitHubDeployments('acme/odoo-mta');
    dir = mkdtempSync(path.join(os.tmpdir(), 'deploy-e2e-'));
    setDeployPorts(undefined); // production wiring from settings
    host = await startLocalHost({
      dataDir: dir,
      port: 0,
      env: {
        ...sandboxSettings(sb),
        LOG_LEVEL: 'warn',
        HEALTH_TIMEOUT_SECONDS: '30',
        HEALTH_KEY_URLS: '/web/health',
        IMAGE_WAIT_MINUTES: '0',
        MIN_FREE_DISK_GB: '0.1',
        DEPLOY_RETRY_FIRST_SECONDS: '0.5',
        DEPLOY_RETRY_ATTEMPTS: '3',
        GITHUB_REPOSITORY: gh.repository,
        GITHUB_API_URL: gh.url,
        GITHUB_TOKEN: gh.token,
        SLACK_WEBHOOK_URL: slack.webhookUrl,
      },
    });
  });
  afterAll(async () => {
    await host?.stop();
    await slack?.stop();
    await gh?.stop();
    await sb?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function deploy(version: string, sha: string, imageRef: string): Promise<DeployResult> {
    const id = await host.engine.startNew('deployUat', {
      input: { environment: 'uat', version, sha, imageRef, coverage: 88, mergedBy: 'alice' },
    });
    const st = await host.engine.waitForCompletion(id, 10 * 60 * 1000);
    expect(st.runtimeStatus).toBe('Completed');
    return st.output as DeployResult;
  }

  it('deploys the next release: UAT runs it, the ledger, GitHub deployment statuses and Slack are right', async () => {
    const result = await deploy('1.1.0', SHA1, sb.image('next', 'uat'));
    expect(result).toMatchObject({ outcome: 'Succeeded', modules: 'all' });
    const cur = await uat.opsJson('current');
    expect(cur.json.image).toBe(sb.image('next', 'uat'));
    expect((await uat.opsJson('health')).json.ok).toBe(true);
    const config = loadConfig(process.env);
    const ledger = createLedger(ledgerContainer(config));
    expect(await ledger.current('uat')).toMatchObject({
      version: '1.1.0',
      sha: SHA1,
      imageRef: sb.image('next', 'uat'),
      coverage: 88,
      backupId: result.backupId,
    });
    const backups = new BackupStore({
      connectionString: config.BACKUP_STORAGE_CONNECTION!,
      container: config.BACKUP_CONTAINER ?? 'backups',
    });
    const v = await backups.verify(result.backupId!);
    expect(v.ok).toBe(true);
    expect(Object.keys(v.manifest!.parts).sort()).toEqual(['db.dump', 'filestore.tar']);
    const d = gh.deployments.find((x) => x.ref === SHA1)!;
    expect(d.environment).toBe('uat');
    expect(d.statuses.map((s) => s.state)).toEqual(['in_progress', 'success']);
    expect(d.statuses[1].environment_url).toBe(uat.baseUrl);
    const texts = slack.posts.map((p) => JSON.stringify(p.body));
    expect(texts.some((t) => t.includes('Deployed') && t.includes('1.1.0') && t.includes('alice'))).toBe(
      true,
    );
  });

  it('a failing migration is rolled back: identical tables, previous version healthy, logs in Blob', async () => {
    const before = await tableChecksums(uat);
    const result = await deploy('1.2.0', SHA2, sb.image('brokenMigration', 'uat'));
    expect(result).toMatchObject({
      outcome: 'RolledBack',
      failedStep: 'migrate',
      code: 'DEPLOY.MIGRATION_FAILED',
    });
    expect(await tableChecksums(uat)).toEqual(before);
    expect((await uat.opsJson('current')).json.image).toBe(sb.image('next', 'uat'));
    expect((await uat.opsJson('health')).json.ok).toBe(true);
    const config = loadConfig(process.env);
    const backups = new BackupStore({
      connectionString: config.BACKUP_STORAGE_CONNECTION!,
      container: config.BACKUP_CONTAINER ?? 'backups',
    });
    expect(result.logs).toEqual(expect.arrayContaining([`${result.backupId}/logs/migration.log`]));
    expect((await backups.readLog(result.backupId!, 'migration.log')).length).toBeGreaterThan(50);
    expect((await createLedger(ledgerContainer(config)).current('uat'))?.version).toBe('1.1.0');
    const d = gh.deployments.find((x) => x.ref === SHA2)!;
    expect(d.statuses.map((s) => s.state)).toEqual(['in_progress', 'failure']);
    expect(
      slack.posts
        .map((p) => JSON.stringify(p.body))
        .some((t) => t.includes('rolled back') && t.includes('MIGRATION_FAILED')),
    ).toBe(true);
  });

  it('a release that is unhealthy after start is rolled back the same way', async () => {
    const before = await tableChecksums(uat);
    const result = await deploy('1.3.0', '3'.repeat(40), sb.image('unhealthy', 'uat'));
    expect(result).toMatchObject({ outcome: 'RolledBack', failedStep: 'health', code: 'DEPLOY.UNHEALTHY' });
    expect(await tableChecksums(uat)).toEqual(before);
    expect((await uat.opsJson('current')).json.image).toBe(sb.image('next', 'uat'));
    expect((await uat.opsJson('health')).json.ok).toBe(true);
  });
});
