/**
 * The approval door against the REAL deployProd orchestrator (both sides of the approval contract):
 * embedded host, real clock, Azurite, the product's Slack adapter posting to a fake Slack, an in-memory
 * VM and registry. Links come from what Slack received; decisions go through the HTML form exactly as
 * a browser posts it (GET the page, read its hidden fields, POST form-urlencoded).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { startLocalHost, type LocalHost } from '../../local/host';
import type { DeployPorts } from '../../functions/activities/deploy';
import { setProdPorts, type ProdOptions } from '../../functions/activities/prod';
import type { ProdCustomStatus, ProdDeployResult } from '../../functions/orchestrators/deployProd';
import { BackupStore } from '../../shared/adapters/backup-store';
import { createLedger } from '../../shared/adapters/ledger';
import { createSlack } from '../../shared/adapters/slack';
import { signingKeys } from '../../shared/domain/approval-token';
import type { DeploySettings } from '../../shared/domain/deploy-plan';
import { createLogger } from '../../shared/log';
import { createFakeVm } from '../support/fake-vm-shell';
import { startFakeSlack, type FakeSlack } from '../support/fake-slack';
import { waitForLinks } from '../support/prod-approval';
import { digestOf, memoryRegistry, prodImage, uatImage } from '../support/memory-registry';

const SHA_OLD = 'a'.repeat(40);
const SHA_NEW = 'b'.repeat(40);
const UAT = uatImage;
const PROD = prodImage;
const signingKey = randomBytes(36).toString('base64url');

describe('approval links × deployProd (embedded host)', () => {
  let dir: string;
  let host: LocalHost;
  let slack: FakeSlack;
  let n = 0;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'approvals-prod-'));
    host = await startLocalHost({ dataDir: dir, port: 0, env: { LOG_LEVEL: 'error', APPROVAL_SIGNING_KEY: signingKey } });
    slack = await startFakeSlack();
  }, 90_000);
  afterAll(async () => {
    setProdPorts(undefined);
    await host?.stop();
    await slack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(vmBehaviour: Parameters<typeof createFakeVm>[1] = {}) {
    const k = ++n;
    const vm = createFakeVm({ image: PROD('1.0.0') }, vmBehaviour);
    const registry = memoryRegistry({ 'uat-v1.0.0': digestOf('one'), 'prod-v1.0.0': digestOf('one'), 'uat-v1.1.0': digestOf('eleven') });
    const svc = BlobServiceClient.fromConnectionString(host.blobConnectionString!);
    const container = svc.getContainerClient(`approvalsprod${k}`);
    await container.createIfNotExists();
    const ledger = createLedger(container);
    await ledger.record('prod', { version: '1.0.0', sha: SHA_OLD, imageRef: PROD('1.0.0'), imageDigest: digestOf('one'), deployedAt: new Date().toISOString() });
    await ledger.record('uat', { version: '1.1.0', sha: SHA_NEW, imageRef: UAT('1.1.0'), imageDigest: digestOf('eleven'), coverage: 91, deployedAt: new Date().toISOString(), instanceId: 'deploy-uat-1.1.0-bbbbbbbbbbbb' });
    const settings: DeploySettings = { environment: 'prod', url: 'http://prod.invalid', minFreeDiskGb: 1, imageWaitMinutes: 0, imagePollSeconds: 1, healthTimeoutSeconds: 1, keyUrls: [], keepCount: 5, retryFirstMs: 10, retryAttempts: 2 };
    const log = createLogger({ level: 'error', sink: () => undefined });
    const deploy: DeployPorts = {
      settings: () => settings,
      ssh: { connect: () => vm.connect() },
      backups: new BackupStore({ connectionString: host.blobConnectionString!, container: `approvalsprodbk${k}` }),
      registry,
      ledger,
      notify: { notify: async () => ({ githubDeploymentId: 1 }) },
      changedFiles: async () => ['addons/sale_custom/models/sale.py'],
      log,
    };
    const options: ProdOptions = {
      approvers: ['alice', 'bob', 'carol'],
      approvalsRequired: 1,
      approvalTimeoutHours: 24,
      approvalReminderMinutes: 0,
      fourEyes: true,
      autoRollback: false,
      healthStableSeconds: 0,
      diskSnapshot: false,
      publicBaseUrl: host.baseUrl,
      repositoryUrl: 'https://github.com/acme/odoo-mta',
    };
    setProdPorts({ deploy, options, keys: () => signingKeys({ APPROVAL_SIGNING_KEY: signingKey }), slack: createSlack({ webhookUrl: slack.webhookUrl, log }), decisions: container, log });
    const id = `deploy-prod-1.1.0-bbbbbbbbbbbb-a${k}`;
    await host.engine.startNew('deployProd', { instanceId: id, input: { environment: 'prod', version: '1.1.0', sha: SHA_NEW, imageRef: UAT('1.1.0'), requestedBy: 'alice', reason: 'monthly release' } });
    return { id, vm, registry };
  }

  async function openPage(link: string) {
    const res = await fetch(link, { headers: { accept: 'text/html' } });
    const html = await res.text();
    const fields: Record<string, string> = {};
    for (const m of html.matchAll(/<input type="hidden" name="([a-z_]+)" value="([^"]*)">/g)) fields[m[1]] = m[2];
    return { status: res.status, html, fields };
  }
  async function submit(link: string, form: Record<string, string>) {
    const { fields } = await openPage(link);
    const res = await fetch(link, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'null', 'sec-fetch-site': 'same-origin', 'user-agent': 'Mozilla/5.0 (Android) approver-phone', 'x-forwarded-for': '198.51.100.7:4000' },
      body: new URLSearchParams({ ...fields, ...form }).toString(),
    });
    return { status: res.status, html: await res.text() };
  }
  const finish = async (id: string) => (await host.engine.waitForCompletion(id, 60_000)).output as ProdDeployResult;

  it('the page shows the real request; an approval on the page deploys, with the decision recorded', async () => {
    const d = await start();
    const links = await waitForLinks(slack.posts, d.id, 'approval', 60_000);
    expect(links.map((l) => l.approver).sort()).toEqual(['bob', 'carol']); // four-eyes: none for alice
    const page = await openPage(links.find((l) => l.approver === 'bob')!.url);
    expect(page.status).toBe(200);
    for (const text of ['Approve PROD deploy of 1.1.0?', 'alice', 'monthly release', 'Tested on UAT?', `https://github.com/acme/odoo-mta/compare/${SHA_OLD}...${SHA_NEW}`, '1.0.0', d.id]) expect(page.html).toContain(text);

    const done = await submit(links.find((l) => l.approver === 'bob')!.url, { decision: 'approve', confirm: 'APPROVE', check_uat: 'yes', check_backup: 'yes', check_rollback: 'yes', comment: 'go' });
    expect(done.status).toBe(200);
    expect(done.html).toContain('Approved');
    const result = await finish(d.id);
    expect(result).toMatchObject({ outcome: 'Succeeded', prodState: 'running-new', imageRef: PROD('1.1.0'), approvals: [{ approver: 'bob' }] });
    expect(d.registry.tags.get('prod-v1.1.0')).toBe(d.registry.tags.get('uat-v1.1.0'));
    expect(result.decisions).toEqual([expect.objectContaining({ approver: 'bob', action: 'approve', verdict: 'accepted', comment: 'go', ip: '198.51.100.7', userAgent: 'Mozilla/5.0 (Android) approver-phone' })]);
    // carol's link now belongs to a deploy that has ended
    const late = await openPage(links.find((l) => l.approver === 'carol')!.url);
    expect(late.status).toBe(410);
    expect((host.engine.getStatus(d.id)?.customStatus as ProdCustomStatus).pendingApprovals).toEqual([]);
  }, 120_000);

  it('a failing migration posts rollback links; the ROLLBACK page restores the previous version', async () => {
    const d = await start({ failMigration: true });
    const links = await waitForLinks(slack.posts, d.id, 'approval', 60_000);
    expect((await submit(links[0].url, { decision: 'approve', confirm: 'APPROVE', check_uat: 'yes', check_backup: 'yes', check_rollback: 'yes' })).status).toBe(200);
    const rollback = await waitForLinks(slack.posts, d.id, 'rollback', 60_000);
    const carol = rollback.find((l) => l.approver === 'carol')!;
    const page = await openPage(carol.url);
    expect(page.status).toBe(200);
    expect(page.html).toContain('Roll back PROD from 1.1.0?');
    expect(page.html).toContain('Type ROLLBACK');
    expect((host.engine.getStatus(d.id)?.customStatus as ProdCustomStatus).step).toBe('awaiting-rollback-decision');
    expect((await submit(carol.url, { decision: 'rollback', confirm: 'APPROVE' })).status).toBe(400);
    const done = await submit(carol.url, { decision: 'rollback', confirm: 'ROLLBACK', comment: 'restore now' });
    expect(done.status).toBe(200);
    const result = await finish(d.id);
    expect(result).toMatchObject({ outcome: 'RolledBack', prodState: 'rolled-back', rollback: { by: 'carol', ok: true } });
    expect(d.vm.state.image).toBe(PROD('1.0.0'));
  }, 120_000);
});
