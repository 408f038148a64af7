/**
 * The status page during a PROD outage, in Chromium (playwright-core, test/support/browser.ts), on a
 * phone (390×844) and a desktop, in light and dark mode: the REAL deployProd (test/support/prod-rig.ts)
 * whose migration fails leaves PROD stopped, waiting for the rollback decision. Asserts what a person
 * reads — the attention strip and "PROD is DOWN" before anything else, on the first screen of a phone;
 * the failure text from the failure; who may decide and until when — and runs axe-core (WCAG 2 A/AA,
 * colour contrast included) on the page in both colour schemes.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { startLocalHost, type LocalHost } from '../../local/host';
import { setProdPorts } from '../../functions/activities/prod';
import type { ProdCustomStatus } from '../../functions/orchestrators/deployProd';
import { createSlack } from '../../shared/adapters/slack';
import { PROD_SHA_NEW, prodRig } from '../support/prod-rig';
import { startFakeSlack, type FakeSlack } from '../support/fake-slack';
import { uatImage } from '../support/memory-registry';
import { screenshot, withBrowser } from '../support/browser';
import { until } from '../support/until';

jest.setTimeout(360_000);
const SETUP_MS = 420_000;

const READ_KEY = randomBytes(24).toString('base64url');
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

interface AxeResult {
  violations: Array<{
    id: string;
    impact: string;
    help: string;
    nodes: Array<{ target: string[]; failureSummary?: string }>;
  }>;
}

async function axe(page: Page): Promise<AxeResult['violations']> {
  // the page's CSP forbids scripts: axe is injected through the DevTools protocol (addScriptTag would be blocked)
  await page.evaluate(AXE);
  const r = (await page.evaluate(
    `axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] }, resultTypes: ['violations'] })`,
  )) as AxeResult;
  return r.violations;
}

describe('status page during a PROD outage (Chromium, axe)', () => {
  let dir: string;
  let host: LocalHost;
  let slack: FakeSlack;
  let id: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dashboard-outage-'));
    host = await startLocalHost({
      dataDir: dir,
      port: 0,
      env: {
        LOG_LEVEL: 'error',
        APPROVAL_SIGNING_KEY: randomBytes(36).toString('base64url'),
        STATUS_READ_KEY: READ_KEY,
        DISPLAY_TIME_ZONE: 'Europe/Brussels',
      },
    });
    slack = await startFakeSlack();
    const { ports } = await prodRig({
      blobConnectionString: host.blobConnectionString!,
      publicBaseUrl: host.baseUrl,
      container: 'ledger',
      signingKey: randomBytes(36).toString('base64url'),
      slack: (log) =>
        createSlack({ botToken: slack.token, apiUrl: slack.apiUrl, channel: '#deployments', log }),
      vmBehaviour: { failMigration: true },
    });
    setProdPorts(ports);
    id = 'deploy-prod-1.1.0-bbbbbbbbbbbb';
    await host.durable.startNew('deployProd', {
      instanceId: id,
      input: {
        environment: 'prod',
        version: '1.1.0',
        sha: PROD_SHA_NEW,
        imageRef: uatImage('1.1.0'),
        requestedBy: 'erin',
        reason: 'UX review: re-deploy the checkout fixes',
      },
    });
    const status = async () =>
      (await host.durable.getStatus(id))?.customStatus as ProdCustomStatus | undefined;
    const wait = (what: string, ok: (st: ProdCustomStatus | undefined) => boolean) =>
      until(
        what,
        async () => {
          const st = await status();
          return ok(st) && st;
        },
        180_000,
        50,
      );
    const asked = await wait(
      "Bob's approval link",
      (st) => !!st?.pendingApprovals?.some((p) => p.approver === 'bob'),
    );
    const nonce = asked.pendingApprovals.find((p) => p.approver === 'bob')!.nonce;
    await host.durable.raiseEvent(id, 'approval-decision', {
      nonce,
      approver: 'bob',
      action: 'approve',
      decidedAt: new Date().toISOString(),
    });
    await wait(
      'the rollback decision',
      (st) => st?.step === 'awaiting-rollback-decision' && (st?.pendingApprovals.length ?? 0) > 0,
    );
  }, SETUP_MS);

  afterAll(async () => {
    setProdPorts(undefined);
    await host?.stop();
    await slack?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const device of [
    { name: 'phone', viewport: { width: 390, height: 844 }, isMobile: true },
    { name: 'desktop', viewport: { width: 1280, height: 900 }, isMobile: false },
  ])
    for (const scheme of ['light', 'dark'] as const)
      it(`${device.name}, ${scheme}: DOWN first, the failure from the failure, who decides until when; axe finds nothing`, async () => {
        await withBrowser(async (browser) => {
          const context = await browser.newContext({
            viewport: device.viewport,
            isMobile: device.isMobile,
            hasTouch: device.isMobile,
            colorScheme: scheme,
          });
          const page = await context.newPage();
          await page.emulateMedia({ colorScheme: scheme });
          const resp = await page.goto(`${host.baseUrl}/api/dashboard?key=${encodeURIComponent(READ_KEY)}`);
          expect(resp?.status()).toBe(200);

          // the first thing: the attention strip, its first line PROD is DOWN, on the first screen
          const strip = page.locator('[data-attention]');
          const first = strip.locator('li').first();
          expect(await first.getAttribute('data-severity')).toBe('down');
          expect(await first.locator('[data-title]').innerText()).toBe('PROD is DOWN');
          const detail = await first.locator('[data-detail]').innerText();
          expect(detail).toMatch(
            /^the PROD deploy of 1\.1\.0 failed .*migration failed \(odoo exit 1, CRITICAL: boom\).*waiting for the rollback decision$/,
          );
          expect(detail).not.toContain('UX review');
          expect(await first.innerText()).toMatch(/until \d{1,2} Dec \d{4}, \d\d:\d\d CET/);
          expect(await first.innerText()).toContain(`odoo-pipeline logs ${id}`);
          const box = await first.boundingBox();
          expect(box && box.y + box.height).toBeLessThanOrEqual(device.viewport.height);
          // PROD's card first, marked DOWN, its release not shown as running
          expect(await page.locator('article.env').first().getAttribute('data-environment')).toBe('prod');
          expect(await page.locator('#env-prod [data-health]').getAttribute('data-health')).toBe('down');
          expect(await page.locator('#env-prod [data-running-version]').count()).toBe(0);
          expect(await page.locator('#env-prod [data-stopped-version]').innerText()).toBe('1.0.0');
          expect(await page.locator('#env-prod [data-approvals]').innerText()).toMatch(
            /rollback decision: needs 1 of alice, bob, carol/,
          );
          // words, not internal names; no progress bar while a person is awaited; nothing wider than the screen
          const text = await page.locator('body').innerText();
          expect(text).not.toMatch(/deployProd|awaiting-rollback-decision|awaiting-approval|lane raised/);
          expect(await page.locator('progress').count()).toBe(0);
          expect(
            await page.evaluate(
              'document.documentElement.scrollWidth <= document.documentElement.clientWidth',
            ),
          ).toBe(true);
          expect(await page.content()).not.toMatch(/\/tmp\/|\/work\/|\/opt\/odoo/);

          // no timed reload unless the reader asks for it (WCAG 2.2.1)
          expect(await page.locator('meta[http-equiv="refresh"]').count()).toBe(0);
          const violations = await axe(page);
          expect(
            violations.map(
              (v) =>
                `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`,
            ),
          ).toEqual([]);
          await screenshot(page, `dashboard-outage-${device.name}-${scheme}.png`);
          await context.close();
        });
      });

  it('without its key the page says what to do (no raw JSON), and passes axe too', async () => {
    await withBrowser(async (browser) => {
      const page = await browser.newPage();
      const resp = await page.goto(`${host.baseUrl}/api/dashboard`);
      expect(resp?.status()).toBe(401);
      expect(await page.locator('h1').innerText()).toBe('This status page needs its link');
      expect(await page.locator('body').innerText()).not.toMatch(/^\s*\{/);
      expect(await axe(page)).toEqual([]);
    });
  });
});
