/**
 * The approval and rollback pages as an approver reads them (issue #17), in Chromium (playwright-core,
 * test/support/browser.ts) on a phone (390×844) and a desktop, in light and dark mode, each page checked
 * with axe-core (WCAG 2 A/AA, colour contrast included). The REAL deployProd runs in the embedded host
 * (test/support/prod-rig.ts: PROD runs 1.0.0, UAT ran 1.1.0 with 91 % coverage); Slack and GitHub are
 * the fakes that speak their HTTP APIs (GitHub's compare says 3 commits); the links are the ones the
 * approvers received in Slack, opened by the approver signed in (the embedded host's local sign-in).
 *
 *  1. an approval: the summary card first (1.0.0 → 1.1.0, "3 commits" linking to the compare view,
 *     coverage and UAT in words), the decision on the first screen of a phone, internal fields folded;
 *     Reject asks again on a second page (without JavaScript too) and "No, go back" decides nothing;
 *     Bob approves → a page saying what happens next, the time in DISPLAY_TIME_ZONE, a status link;
 *     Carol's link then says "Bob Dupont approved at … (Europe/Brussels)".
 *  2. the same version again: "PROD already runs 1.1.0" first; Carol rejects (two steps); Alice's link
 *     says who rejected.
 *  3. a failed migration (PROD stopped): the rollback page says PROD is down, what failed, and which
 *     version it returns to, the Roll back button on the first screen of a phone.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startLocalHost, type LocalHost } from '../../local/host';
import { setProdPorts } from '../../functions/activities/prod';
import type { ProdCustomStatus, ProdDeployResult } from '../../functions/orchestrators/deployProd';
import { createSlack } from '../../shared/adapters/slack';
import { createGitHubDeployments } from '../../shared/adapters/github-deployments';
import { PROD_SHA_NEW, PROD_SHA_OLD, prodRig } from '../support/prod-rig';
import { startFakeSlack, type FakeSlack } from '../support/fake-slack';
import { startFakeGitHubDeployments, type FakeGitHubDeployments } from '../support/fake-github-deployments';
import { uatImage } from '../support/memory-registry';
import { launchBrowser, screenshot } from '../support/browser';
import { approversSetting, cookieOf, outboxSignIn, PEOPLE, type Who } from '../support/identities';
import { waitForLinks } from '../support/prod-approval';
import { until } from '../support/until';

jest.setTimeout(480_000);

const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const KEY = randomBytes(36).toString('base64url');
const PHONE = { name: 'phone', viewport: { width: 390, height: 844 }, isMobile: true };
const DESKTOP = { name: 'desktop', viewport: { width: 1280, height: 900 }, isMobile: false };
type Device = typeof PHONE;
/** "6 Dec 2026, 09:41 CET (Europe/Brussels)" (CEST in summer) */
const BRUSSELS_TIME = /\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d CES?T \(Europe\/Brussels\)/;

async function axe(page: Page): Promise<string[]> {
  // the page's CSP only runs its own nonce'd script: axe goes in through the DevTools protocol
  await page.evaluate(AXE);
  const r = (await page.evaluate(
    `axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] }, resultTypes: ['violations'] })`,
  )) as { violations: Array<{ id: string; impact: string; nodes: Array<{ target: string[] }> }> };
  return r.violations.map(
    (v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`,
  );
}

/** the bottom of an element, measured on the page as loaded (not scrolled) */
async function bottomOf(page: Page, selector: string): Promise<number> {
  const box = await page.locator(selector).boundingBox();
  if (!box) throw new Error(`${selector} is not shown`);
  return box.y + box.height;
}

describe('approval and rollback pages (Chromium, phone + desktop, light + dark, axe)', () => {
  let dir: string;
  let host: LocalHost;
  let slack: FakeSlack;
  let github: FakeGitHubDeployments;
  let browser: Browser;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'approval-pages-'));
    host = await startLocalHost({
      dataDir: dir,
      port: 0,
      env: {
        LOG_LEVEL: 'error',
        APPROVAL_SIGNING_KEY: KEY,
        APPROVERS: approversSetting('alice', 'bob', 'carol'),
        DISPLAY_TIME_ZONE: 'Europe/Brussels',
      },
    });
    slack = await startFakeSlack();
    github = await startFakeGitHubDeployments('acme/odoo-mta');
    github.compares.set(`${PROD_SHA_OLD}...${PROD_SHA_NEW}`, ['addons/sale_custom/models/sale.py']);
    github.commitCounts = new Map([[`${PROD_SHA_OLD}...${PROD_SHA_NEW}`, 3]]);
    browser = await launchBrowser();
  }, 240_000);

  afterAll(async () => {
    setProdPorts(undefined);
    await browser?.close().catch(() => undefined);
    await host?.stop();
    await slack?.stop();
    await github?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function rig(vmBehaviour: { failMigration?: boolean } = {}) {
    const { ports } = await prodRig({
      blobConnectionString: host.blobConnectionString!,
      publicBaseUrl: host.baseUrl,
      container: 'ledger', // the host's LEDGER_CONTAINER: the pages read the recorded decisions there
      signingKey: KEY,
      slack: (log) =>
        createSlack({ botToken: slack.token, apiUrl: slack.apiUrl, channel: '#deployments', log }),
      vmBehaviour,
    });
    ports.github = createGitHubDeployments({
      repository: 'acme/odoo-mta',
      baseUrl: github.url,
      token: github.token,
    });
    setProdPorts(ports);
  }

  let n = 0;
  async function requestDeploy(): Promise<string> {
    const id = `deploy-prod-1.1.0-${(++n).toString(16).padStart(12, 'e')}`;
    await host.durable.startNew('deployProd', {
      instanceId: id,
      input: {
        environment: 'prod',
        version: '1.1.0',
        sha: PROD_SHA_NEW,
        imageRef: uatImage('1.1.0'),
        requestedBy: 'erin',
        reason: 'Monthly release: invoice layout and stock fixes',
      },
    });
    return id;
  }
  const status = async (id: string) =>
    (await host.durable.getStatus(id))?.customStatus as ProdCustomStatus | undefined;

  /** a browser context signed in as `who` (the link decides only for its own approver) */
  async function as(
    who: Who,
    device: Device,
    scheme: 'light' | 'dark' = 'light',
    javaScriptEnabled = true,
  ): Promise<{ ctx: BrowserContext; page: Page }> {
    const ctx = await browser.newContext({
      viewport: device.viewport,
      isMobile: device.isMobile,
      hasTouch: device.isMobile,
      colorScheme: scheme,
      javaScriptEnabled,
    });
    const cookie = cookieOf(host.keys.masterKey, who);
    const eq = cookie.indexOf('=');
    await ctx.addCookies([{ name: cookie.slice(0, eq), value: cookie.slice(eq + 1), url: host.baseUrl }]);
    const page = await ctx.newPage();
    await page.emulateMedia({ colorScheme: scheme });
    return { ctx, page };
  }

  let approvalId: string;
  let links: Awaited<ReturnType<typeof waitForLinks>>;
  const linkOf = (who: Who) => links.find((l) => l.approver === who)!.url;

  it('sets up: a PROD deploy of 1.1.0 waits for one of Alice, Bob and Carol', async () => {
    await rig();
    approvalId = await requestDeploy();
    links = await waitForLinks(slack.posts, approvalId, 'approval', 90_000);
    expect(links.map((l) => l.approver).sort()).toEqual(['alice', 'bob', 'carol']);
  });

  it("the Slack outbox the demo prints: Bob's private message has a link a person can click, signed in as Bob", async () => {
    slack.decorate = outboxSignIn(host.baseUrl, host.keys.masterKey); // what `npm run demo` sets
    const ctx = await browser.newContext({ viewport: PHONE.viewport, isMobile: true, hasTouch: true });
    try {
      const page = await ctx.newPage();
      await page.goto(slack.outboxUrl);
      const bobs = page
        .locator('h2', { hasText: `${PEOPLE.bob.slack} (private)` })
        .locator('xpath=following-sibling::ul[1]');
      const link = bobs.locator('a[href*="approvals"]').first();
      await Promise.all([page.waitForURL(/\/api\/approvals\//), link.click()]);
      expect(await page.locator('h1').innerText()).toBe('Approve PROD deploy of 1.1.0?');
      expect(await page.locator('details.more').textContent()).toContain('This link is for Bob Dupont');
      // the click signed this browser in as Bob: the same link, asked as JSON with the browser's cookies
      const who = await ctx.request.get(page.url(), { headers: { accept: 'application/json' } });
      expect(((await who.json()) as { signedInAs: string | null }).signedInAs).toMatch(
        /Bob Dupont|bob@example\.com/,
      );
    } finally {
      await ctx.close();
      slack.decorate = undefined;
    }
  });

  for (const device of [PHONE, DESKTOP])
    for (const scheme of ['light', 'dark'] as const)
      it(`${device.name}, ${scheme}: the summary card first, the decision on the first screen, internals folded; axe finds nothing`, async () => {
        const { ctx, page } = await as('bob', device, scheme);
        try {
          const res = await page.goto(linkOf('bob'));
          expect(res?.status()).toBe(200);
          expect(await page.locator('h1').innerText()).toBe('Approve PROD deploy of 1.1.0?');
          expect(await page.locator('[data-warnings]').count()).toBe(0); // nothing to warn about
          // the summary card comes right after the title, before the form
          const order = await page.evaluate(
            `[...document.querySelectorAll('main > *')].map((e) => e.tagName + (e.hasAttribute('data-summary') ? '[summary]' : '') + (e.id ? '#' + e.id : ''))`,
          );
          expect((order as string[]).slice(0, 4)).toEqual(['P', 'H1', 'SECTION[summary]', 'FORM#decide']);
          const card = page.locator('[data-summary]');
          const text = await card.innerText();
          expect(text).toMatch(/Changes\s+PROD 1\.0\.0 → 1\.1\.0, 3 commits/);
          expect(await card.locator('a[data-compare]').innerText()).toBe('3 commits');
          expect(await card.locator('a[data-compare]').getAttribute('href')).toBe(
            `https://github.com/acme/odoo-mta/compare/${PROD_SHA_OLD}...${PROD_SHA_NEW}`,
          );
          expect(text).toMatch(/Tests\s+cover 91 % of the code/);
          expect(text).toMatch(/On UAT\s+deployed, healthy since /);
          expect(text).toMatch(BRUSSELS_TIME);
          expect(text).toMatch(/Asked by\s+erin: “Monthly release: invoice layout and stock fixes”/);
          expect(text).toMatch(/Decision\s+needs 1 of Alice Martin, Bob Dupont and Carol Nguyen; until /);
          // the decision without scrolling on a phone
          for (const sel of ['#approve', '#reject', '#confirm', 'input[name=check_rollback]'])
            expect(await bottomOf(page, sel)).toBeLessThanOrEqual(device.viewport.height);
          // internal fields are not in what a person reads until they open Details
          const body = await page.locator('main').innerText();
          expect(body).not.toMatch(/sha256:|imageDigest|fromVersion|https:\/\/github\.com|bbbbbbbbbbbb/);
          expect(await page.locator('details.more').getAttribute('open')).toBeNull();
          await page.locator('details.more summary').click();
          expect(await page.locator('details.more').innerText()).toContain(approvalId);
          expect(await page.locator('details.more').innerText()).toMatch(/Image digest\s+sha256:/);
          expect(
            await page.evaluate(
              'document.documentElement.scrollWidth <= document.documentElement.clientWidth',
            ),
          ).toBe(true);
          expect(await axe(page)).toEqual([]);
          await screenshot(page, `approval-${device.name}-${scheme}.png`);
        } finally {
          await ctx.close();
        }
      });

  it('Reject asks again on a second page (without JavaScript), "No, go back" decides nothing', async () => {
    const { ctx, page } = await as('carol', PHONE, 'light', false);
    try {
      await page.goto(linkOf('carol'));
      await page.locator('details.comment summary').click();
      await page.locator('#comment').fill('Not before the inventory count');
      const [asked] = await Promise.all([page.waitForNavigation(), page.locator('#reject').click()]);
      expect(asked?.status()).toBe(200);
      expect(await page.locator('h1').innerText()).toBe('Reject the PROD deploy of 1.1.0?');
      expect(await page.locator('[data-reject-confirm]').innerText()).toContain('Nothing is deployed');
      expect(await page.locator('#comment').inputValue()).toBe('Not before the inventory count');
      expect(await bottomOf(page, '#reject-confirm')).toBeLessThanOrEqual(PHONE.viewport.height);
      // still waiting for everyone: the first press decided nothing
      expect((await status(approvalId))?.pendingApprovals.map((p) => p.approver).sort()).toEqual([
        'alice',
        'bob',
        'carol',
      ]);
      const [back] = await Promise.all([page.waitForNavigation(), page.locator('#reject-back').click()]);
      expect(back?.status()).toBe(200);
      expect(await page.locator('h1').innerText()).toBe('Approve PROD deploy of 1.1.0?');
      expect((await status(approvalId))?.pendingApprovals).toHaveLength(3);
    } finally {
      await ctx.close();
    }
  });

  it('the Reject confirmation passes axe in light and dark (with JavaScript, where axe can run)', async () => {
    for (const scheme of ['light', 'dark'] as const) {
      const { ctx, page } = await as('carol', PHONE, scheme);
      try {
        await page.goto(linkOf('carol'));
        await Promise.all([page.waitForNavigation(), page.locator('#reject').click()]);
        expect(await page.locator('h1').innerText()).toBe('Reject the PROD deploy of 1.1.0?');
        expect(await axe(page)).toEqual([]);
        await screenshot(page, `approval-reject-confirm-${scheme}.png`);
      } finally {
        await ctx.close();
      }
    }
    expect((await status(approvalId))?.pendingApprovals).toHaveLength(3);
  });

  it('Bob approves: the page says what happens next, when (Europe/Brussels) and where to follow it', async () => {
    const { ctx, page } = await as('bob', PHONE, 'dark');
    try {
      await page.goto(linkOf('bob'));
      for (const box of ['check_uat', 'check_backup', 'check_rollback'])
        await page.locator(`input[name=${box}]`).check();
      await page.locator('#confirm').fill('APPROVE');
      const [done] = await Promise.all([page.waitForNavigation(), page.locator('#approve').click()]);
      expect(done?.status()).toBe(200);
      expect(await page.locator('h1').innerText()).toBe('Approved');
      expect(await page.locator('#next').innerText()).toMatch(
        /^The deploy of 1\.1\.0 to PROD starts now: PROD is backed up, .*The deployments channel is told when it ends\.$/,
      );
      expect(await page.locator('[data-decided-at]').innerText()).toMatch(BRUSSELS_TIME);
      expect(await page.locator('main').innerText()).toMatch(/By\s+Bob Dupont/);
      expect(await page.locator('main').innerText()).not.toMatch(/\d{4}-\d\d-\d\dT\d\d:/); // no raw ISO time
      expect(await page.locator('#status-link').getAttribute('href')).toBe('/api/dashboard');
      expect(await axe(page)).toEqual([]);
      await screenshot(page, 'approval-done-phone-dark.png');
    } finally {
      await ctx.close();
    }
  });

  it("Carol's link after Bob decided: who approved and when, not a 409 dump", async () => {
    for (const device of [PHONE, DESKTOP]) {
      const { ctx, page } = await as('carol', device, device === PHONE ? 'light' : 'dark');
      try {
        const res = await page.goto(linkOf('carol'));
        expect([409, 410]).toContain(res?.status()); // still deploying, or already done
        expect(await page.locator('h1').innerText()).toBe('Bob Dupont approved');
        const said = await page.locator('#decided').innerText();
        expect(said).toMatch(/^Bob Dupont approved at /);
        expect(said).toMatch(BRUSSELS_TIME);
        expect(await page.locator('main').innerText()).toContain(
          'Your link is no longer needed: nothing was decided with it.',
        );
        expect(await page.locator('main').innerText()).not.toMatch(/^\s*40\d\b/m);
        expect(await axe(page)).toEqual([]);
        await screenshot(page, `approval-decided-by-other-${device.name}.png`);
      } finally {
        await ctx.close();
      }
    }
    const out = (await host.durable.waitForCompletion(approvalId, 180_000)).output as ProdDeployResult;
    expect(out.outcome).toBe('Succeeded');
  });

  it('the same version again: "PROD already runs 1.1.0" first; Carol rejects in two steps; Alice sees who rejected', async () => {
    const id = await requestDeploy(); // the ledger now says PROD runs 1.1.0
    const again = await waitForLinks(slack.posts, id, 'approval', 90_000);
    const url = (who: Who) => again.find((l) => l.approver === who)!.url;
    let { ctx, page } = await as('carol', PHONE);
    try {
      await page.goto(url('carol'));
      const first = page.locator('[data-warnings] li').first();
      expect(await first.innerText()).toMatch(
        /^PROD already runs 1\.1\.0\. Approving re-deploys the same version/,
      );
      expect(await page.locator('[data-summary]').innerText()).toMatch(/PROD 1\.1\.0 → 1\.1\.0, 0 commits/);
      expect(await bottomOf(page, '#approve')).toBeLessThanOrEqual(PHONE.viewport.height);
      expect(await axe(page)).toEqual([]);
      await page.locator('details.comment summary').click();
      await page.locator('#comment').fill('Same version as PROD: nothing to deploy');
      await Promise.all([page.waitForNavigation(), page.locator('#reject').click()]);
      const [done] = await Promise.all([page.waitForNavigation(), page.locator('#reject-confirm').click()]);
      expect(done?.status()).toBe(200);
      expect(await page.locator('h1').innerText()).toBe('Rejected');
      expect(await page.locator('#next').innerText()).toMatch(
        /^Nothing changes on PROD\. erin and the deployments channel are told/,
      );
      expect(await page.locator('main').innerText()).toContain('Same version as PROD: nothing to deploy');
    } finally {
      await ctx.close();
    }
    const out = (await host.durable.waitForCompletion(id, 180_000)).output as ProdDeployResult;
    expect(out.outcome).toBe('Rejected');
    expect(out.decisions).toEqual([
      expect.objectContaining({ approver: 'carol', action: 'reject', verdict: 'accepted' }),
    ]);
    ({ ctx, page } = await as('alice', DESKTOP, 'dark'));
    try {
      const res = await page.goto(url('alice'));
      expect(res?.status()).toBe(410);
      expect(await page.locator('h1').innerText()).toBe('Carol Nguyen rejected');
      expect(await page.locator('#decided').innerText()).toMatch(BRUSSELS_TIME);
      expect(await axe(page)).toEqual([]);
    } finally {
      await ctx.close();
    }
  });

  describe('after a failed migration (PROD stopped)', () => {
    let id: string;
    let rb: Awaited<ReturnType<typeof waitForLinks>>;
    beforeAll(async () => {
      await rig({ failMigration: true }); // a fresh PROD VM on 1.0.0 (the ledger says so again)
      id = await requestDeploy();
      const asked = await waitForLinks(slack.posts, id, 'approval', 90_000);
      const nonce = (await status(id))!.pendingApprovals.find((p) => p.approver === asked[0].approver)!.nonce;
      await host.durable.raiseEvent(id, 'approval-decision', {
        nonce,
        approver: asked[0].approver,
        action: 'approve',
        decidedAt: new Date().toISOString(),
      });
      rb = await waitForLinks(slack.posts, id, 'rollback', 90_000);
      await until(
        'the rollback decision',
        async () => (await status(id))?.step === 'awaiting-rollback-decision',
        90_000,
      );
    }, 360_000);

    for (const device of [PHONE, DESKTOP])
      for (const scheme of ['light', 'dark'] as const)
        it(`${device.name}, ${scheme}: PROD is down, what failed, which version it returns to; Roll back on the first screen; axe`, async () => {
          const { ctx, page } = await as('bob', device, scheme);
          try {
            const res = await page.goto(rb.find((l) => l.approver === 'bob')!.url);
            expect(res?.status()).toBe(200);
            expect(await page.locator('h1').innerText()).toBe('Roll back PROD from 1.1.0 to 1.0.0?');
            const warnings = page.locator('[data-warnings] li');
            expect(await warnings.nth(0).innerText()).toMatch(
              /^PROD is down\. Odoo is stopped since the failed deploy/,
            );
            expect(await warnings.nth(1).innerText()).toMatch(/^Rolling back returns PROD to 1\.0\.0: /);
            expect(await page.locator('[data-returns-to]').innerText()).toBe('1.0.0');
            const card = await page.locator('[data-summary]').innerText();
            expect(card).toMatch(/What failed\s+.*migration failed \(odoo exit 1, CRITICAL: boom\)/);
            expect(card).toMatch(/while updating the database/);
            expect(card).toMatch(/Decision\s+one of Alice Martin, Bob Dupont and Carol Nguyen; until /); // not "approved so far"

            expect(card).not.toMatch(/\/tmp\/|\[DEPLOY\./); // no sandbox paths, no raw codes
            expect(await bottomOf(page, '#rollback')).toBeLessThanOrEqual(device.viewport.height);
            expect(await bottomOf(page, '[data-warnings] li:first-child')).toBeLessThan(
              (await page.locator('#rollback').boundingBox())!.y,
            );
            expect(await axe(page)).toEqual([]);
            await screenshot(page, `rollback-${device.name}-${scheme}.png`);
          } finally {
            await ctx.close();
          }
        });
  });
});
