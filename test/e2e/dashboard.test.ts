/**
 * The dashboard in a real browser (playwright-core driving Debian's Chromium, headless, loopback only)
 * on a phone-sized viewport, served by the embedded host with the real deployUat orchestration (on the
 * in-memory VM of test/support/fake-vm-shell.ts, held mid-migration) and a PROD deploy waiting for an
 * approval (a stand-in orchestration with the deployProd custom status contract). Asserts what an
 * operator reads, that the strict CSP lets the page's own style apply and nothing else load, that the
 * page refreshes itself and then shows the finished deploy. Screenshot: test-artifacts/dashboard.png.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as df from 'durable-functions';
import { BlobServiceClient } from '@azure/storage-blob';
import type { Page } from 'playwright-core';
import { startLocalHost, type LocalHost } from '../../local/host';
import { setDeployPorts, type DeployPorts } from '../../functions/activities/deploy';
import { createLedger } from '../../shared/adapters/ledger';
import { BackupStore } from '../../shared/adapters/backup-store';
import type { RegistryClient } from '../../shared/adapters/registry';
import type { DeploySettings } from '../../shared/domain/deploy-plan';
import { createLogger } from '../../shared/log';
import { createFakeVm, type FakeVm } from '../support/fake-vm-shell';
import { screenshot, withBrowser } from '../support/browser';

const SHA = (c: string) => c.repeat(40);
const READ_KEY = `read-${'r'.repeat(40)}`;
const PROD_STANDIN = 'dashboardTestProd';

df.app.orchestration(PROD_STANDIN, function* (context) {
  context.df.setCustomStatus(context.df.getInput());
  yield context.df.waitForExternalEvent('finish');
  return { outcome: 'Rejected', environment: 'prod' };
});

const registry: RegistryClient = {
  kind: 'memory',
  listTags: async () => [],
  resolve: async (_r, tag) => ({
    digest: `sha256:${Buffer.from(tag).toString('hex').padEnd(64, '0').slice(0, 64)}`,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
  }),
  retag: async () => {
    throw new Error('not used');
  },
  deleteTag: async () => undefined,
};

describe('dashboard in Chromium', () => {
  let dir: string;
  let host: LocalHost;
  let vm: FakeVm;
  let release: () => void = () => undefined;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dashboard-'));
    host = await startLocalHost({
      dataDir: dir,
      port: 0,
      env: { LOG_LEVEL: 'error', STATUS_READ_KEY: READ_KEY },
    });
    const container = BlobServiceClient.fromConnectionString(host.blobConnectionString!).getContainerClient(
      'ledger',
    );
    await container.createIfNotExists();
    const ledger = createLedger(container);
    await ledger.record('uat', {
      version: '1.0.0',
      sha: SHA('a'),
      imageRef: 'odoo-mta:uat-v1.0.0',
      deployedAt: new Date(Date.now() - 86_400_000).toISOString(),
    });
    await ledger.record('prod', {
      version: '1.0.0',
      sha: SHA('a'),
      imageRef: 'odoo-mta:prod-v1.0.0',
      deployedAt: new Date(Date.now() - 3 * 86_400_000).toISOString(),
    });
    vm = createFakeVm();
    const settings: DeploySettings = {
      environment: 'uat',
      url: 'http://uat.invalid',
      minFreeDiskGb: 1,
      imageWaitMinutes: 0,
      imagePollSeconds: 1,
      jobPollSeconds: 1,
      healthTimeoutSeconds: 1,
      keyUrls: [],
      keepCount: 5,
      retryFirstMs: 10,
      retryAttempts: 2,
    };
    const ports: DeployPorts = {
      settings: () => settings,
      ssh: { connect: () => vm.connect() },
      backups: new BackupStore({ connectionString: host.blobConnectionString!, container: 'backups' }),
      registry,
      ledger,
      notify: { notify: async () => ({}) },
      changedFiles: async () => ['addons/sale_custom/models/sale.py'],
      log: createLogger({ level: 'error', sink: () => undefined }),
    };
    setDeployPorts(ports);
    const deploy = (v: string, sha: string) =>
      host.durable.startNew('deployUat', {
        instanceId: `deploy-uat-${v}-${sha.slice(0, 12)}`,
        input: {
          environment: 'uat',
          version: v,
          sha,
          imageRef: `odoo-mta:uat-v${v}`,
          coverage: 90,
          mergedBy: 'alice',
        },
      });
    // 1.1.0 deployed; 1.2.0 held in the middle of its migration
    const done = await host.durable.waitForCompletion(await deploy('1.1.0', SHA('b')), 60_000);
    expect(done.output).toMatchObject({ outcome: 'Succeeded' });
    vm.behaviour.holdMigrate = new Promise<void>((r) => (release = r));
    await deploy('1.2.0', SHA('c'));
    await host.durable.startNew(PROD_STANDIN, {
      instanceId: `deploy-prod-1.1.0-${'b'.repeat(12)}`,
      input: {
        kind: 'deployProd',
        step: 'awaiting-approval',
        environment: 'prod',
        version: '1.1.0',
        requestedBy: 'erin',
        reason: 'monthly release',
        approvals: { required: 1, received: [] },
        pendingApprovals: [
          {
            approver: 'carol',
            nonce: 'nonce-SECRET-1',
            action: 'approval',
            expiresAt: new Date(Date.now() + 3 * 3600_000).toISOString(),
          },
        ],
      },
    });
    // wait until the held deploy reports its step
    const end = Date.now() + 120_000;
    for (;;) {
      const s = await fetch(`${host.baseUrl}/api/deployments/deploy-uat-1.2.0-${'c'.repeat(12)}`, {
        headers: { 'x-functions-key': host.keys.functionKey },
      });
      if (s.ok && ((await s.json()) as { status?: { step?: string } }).status?.step === 'migrate') break;
      if (Date.now() > end) throw new Error('the held deploy never reached migrate');
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 300_000);

  afterAll(async () => {
    release();
    vm.behaviour.holdMigrate = undefined;
    await host.durable.raiseEvent(`deploy-prod-1.1.0-${'b'.repeat(12)}`, 'finish', {}).catch(() => undefined);
    setDeployPorts(undefined);
    await host?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const text = (page: Page, sel: string) => page.locator(sel).first().innerText();

  it('an operator reads versions, the running deploy step and the pending approval on a phone', async () => {
    await withBrowser(async (browser) => {
      const context = await browser.newContext({
        viewport: { width: 390, height: 844 },
        isMobile: true,
        hasTouch: true,
      });
      const page = await context.newPage();
      const console: string[] = [];
      page.on('console', (m) => console.push(m.text()));
      const requests: string[] = [];
      page.on('request', (r) => requests.push(r.url()));

      const resp = await page.goto(
        `${host.baseUrl}/api/dashboard?key=${encodeURIComponent(READ_KEY)}&refresh=5`,
      );
      expect(resp?.status()).toBe(200);
      const h = resp!.headers();
      expect(h['content-security-policy']).toMatch(
        /^default-src 'none'; style-src 'nonce-[A-Za-z0-9+/=]+'; img-src 'none'; script-src 'none'/,
      );
      expect(h['referrer-policy']).toBe('no-referrer');
      expect(h['x-frame-options']).toBe('DENY');

      // what runs where: UAT's 1.1.0 is stopped for the migration of 1.2.0 (not shown as running)
      expect(await page.locator('#env-uat [data-running-version]').count()).toBe(0);
      expect(await text(page, '#env-uat [data-stopped-version]')).toBe('1.1.0');
      expect(await text(page, '#env-prod [data-running-version]')).toBe('1.0.0');
      // the deploy in progress, at its step in words, with a progress bar (the machine is working, not a person)
      expect(await text(page, '#env-uat [data-in-progress]')).toBe(
        'UAT deploy 1.2.0 — updating the database (module upgrade)',
      );
      expect(await page.locator('#env-uat progress').getAttribute('value')).toBe('6');
      expect(await page.locator('#env-uat [data-health]').getAttribute('data-health')).toBe('down'); // stopped for the migration
      expect(await text(page, '#env-uat [data-last-outcome]')).toMatch(
        /^succeeded 1\.1\.0 \d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d UTC \(\d+s ago\)$/,
      );
      // the pending approval with its expiry; never the nonce
      const approvals = await text(page, '#env-prod [data-approvals]');
      expect(approvals).toMatch(
        /1\.1\.0\s+requested by erin\s+approval: needs 1 of carol\s+\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d UTC \(in 2h 5\dm\)/,
      );
      // the attention strip, first: UAT stopped for its deploy, PROD waits for carol
      expect(await page.locator('[data-attention] li [data-title]').allInnerTexts()).toEqual([
        'UAT is DOWN',
        'PROD deploy of 1.1.0 waits for approval',
      ]);
      expect(await page.content()).not.toContain('SECRET');
      // backups of UAT: the one taken before 1.1.0 and the one before 1.2.0, with sizes
      expect(await page.locator('#env-uat [data-backups] tbody tr').count()).toBe(2);
      expect(await text(page, '#env-uat [data-backups]')).toMatch(/1\.0\.0\s+\d+ B\s+complete/);

      // the page's own style applied (nonce), nothing else requested, no script, no CSP complaint
      expect(await page.evaluate("getComputedStyle(document.querySelector('.env')).borderTopStyle")).toBe(
        'solid',
      );
      expect(await page.locator('script, link, img, iframe, [src], [href]').count()).toBe(0);
      expect(requests.filter((u) => !u.startsWith(`${host.baseUrl}/api/dashboard`))).toEqual([]);
      expect(console.filter((m) => /Content Security Policy|Refused/i.test(m))).toEqual([]);
      // readable on a phone: nothing wider than the screen
      expect(
        await page.evaluate('document.documentElement.scrollWidth <= document.documentElement.clientWidth'),
      ).toBe(true);
      const file = await screenshot(page, 'dashboard.png');
      expect(statSync(file).size).toBeGreaterThan(10_000);

      // it refreshes itself: once the deploy finishes, a later reload shows the new version, idle
      release();
      const end = Date.now() + 90_000;
      for (;;) {
        await page.waitForEvent('load', { timeout: 30_000 });
        if (
          (await page.locator('#env-uat [data-running-version]').count()) &&
          (await text(page, '#env-uat [data-running-version]')) === '1.2.0'
        )
          break;
        if (Date.now() > end) throw new Error('the dashboard never showed 1.2.0');
      }
      expect(await page.locator('#env-uat [data-in-progress]').count()).toBe(0);
      expect(await text(page, '#env-uat section:nth-of-type(2)')).toMatch(/^in progress\s+idle$/i);
      expect(await page.locator('#env-uat [data-health]').getAttribute('data-health')).toBe('up');
      await screenshot(page, 'dashboard-after-deploy.png');
      await context.close();
    });
  }, 240_000);
});
