/**
 * The approval page in a real browser: playwright-core driving Debian's Chromium (headless, phone
 * viewport) against the embedded host. Opens the link, sees the checklist, cannot submit Approve
 * without typing APPROVE (neither with JavaScript nor without it, and the server refuses a forced
 * submit too), approves, sees the confirmation. Screenshots: test-artifacts/approval-page.png (the
 * filled-in form) and test-artifacts/approval-page-done.png (the confirmation).
 */
import { rmSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { LocalHost } from '../../local/host';
import { approvalLink, signApprovalToken, signingKeys } from '../../shared/domain/approval-token';
import type { WaitingStatus } from '../../functions/approvals';
import '../../functions/approvals';
import {
  APPROVAL_PROBE,
  startApprovalHost,
  waitFor,
  type ProbeInput,
  type ProbeOutput,
} from '../support/approval-probe';
import { launchBrowser, screenshot } from '../support/browser';
import { approversSetting, cookieOf } from '../support/identities';

jest.setTimeout(360_000);

describe('approval page in Chromium', () => {
  let dir: string;
  let host: LocalHost;
  let browser: Browser;
  let n = 0;
  const key = randomBytes(36).toString('base64url');

  beforeAll(async () => {
    ({ host, dir } = await startApprovalHost('approval-page-', {
      APPROVAL_SIGNING_KEY: key,
      APPROVERS: approversSetting('alice', 'bob', 'carol'),
    }));
    browser = await launchBrowser();
  }, 240_000);
  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await host?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function request(): Promise<{ id: string; link: string; nonce: string }> {
    const input: ProbeInput = {
      approvers: ['alice'],
      required: 1,
      action: 'approval',
      requestedBy: 'carol',
      version: '1.4.0',
    };
    const id = `deploy-prod-1.4.0-${(++n).toString(16).padStart(12, 'b')}`;
    await host.durable.startNew(APPROVAL_PROBE, { instanceId: id, input });
    const pending = await waitFor(
      'the probe to wait for approval',
      async () =>
        ((await host.durable.getStatus(id))?.customStatus as WaitingStatus | undefined)?.pendingApprovals,
    );
    const p = pending[0];
    const token = signApprovalToken(
      { instanceId: id, approver: p.approver, action: p.action, nonce: p.nonce, exp: Date.now() + 3600_000 },
      signingKeys({ APPROVAL_SIGNING_KEY: key })[0],
    );
    return { id, link: approvalLink(host.baseUrl, token), nonce: p.nonce };
  }

  async function phone(
    javaScriptEnabled = true,
  ): Promise<{ ctx: BrowserContext; page: Page; problems: string[]; posts: string[] }> {
    const ctx = await browser.newContext({
      viewport: { width: 390, height: 844 },
      isMobile: true,
      hasTouch: true,
      deviceScaleFactor: 2,
      javaScriptEnabled,
    });
    // the link decides only for its approver (alice): the browser is signed in as her (embedded host's local sign-in)
    const cookie = cookieOf(host.keys.masterKey, 'alice');
    const eq = cookie.indexOf('=');
    await ctx.addCookies([{ name: cookie.slice(0, eq), value: cookie.slice(eq + 1), url: host.baseUrl }]);
    const page = await ctx.newPage();
    const problems: string[] = [];
    const posts: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(m.text()); // a CSP violation shows up here
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('request', (r) => {
      if (r.method() === 'POST') posts.push(r.url());
      else if (!r.url().startsWith(host.baseUrl)) problems.push(`external request ${r.url()}`);
    });
    return { ctx, page, problems, posts };
  }

  const pendingStill = async (id: string, nonce: string) =>
    (((await host.durable.getStatus(id))?.customStatus as WaitingStatus).pendingApprovals ?? []).some(
      (p) => p.nonce === nonce,
    );

  it('opens the link, requires the checklist and APPROVE, approves, shows the confirmation', async () => {
    const r = await request();
    const { ctx, page, problems, posts } = await phone();
    try {
      const res = await page.goto(r.link);
      expect(res?.status()).toBe(200);
      await expect(page.locator('h1').textContent()).resolves.toContain('Approve PROD deploy of 1.4.0?');
      for (const label of ['Tested on UAT?', 'Backup location ready?', 'Rollback plan documented?']) {
        await expect(page.getByLabel(label).isVisible()).resolves.toBe(true);
      }
      const approve = page.locator('#approve');
      // nothing ticked, nothing typed → Approve is not clickable
      expect(await approve.isDisabled()).toBe(true);
      for (const label of ['Tested on UAT?', 'Backup location ready?', 'Rollback plan documented?'])
        await page.getByLabel(label).check();
      expect(await approve.isDisabled()).toBe(true); // still no APPROVE
      await page.locator('#confirm').fill('approve'); // wrong case is not the word
      expect(await approve.isDisabled()).toBe(true);
      expect(posts).toEqual([]);

      // the server refuses too: force the button on and the field's validation off, submit
      // (string expressions: this project compiles without the DOM typings)
      await page.evaluate(`(() => {
        const c = document.getElementById('confirm');
        c.removeAttribute('required');
        c.removeAttribute('pattern');
        c.value = '';
        document.getElementById('approve').disabled = false;
      })()`);
      const [refused] = await Promise.all([page.waitForNavigation(), approve.click()]);
      expect(refused?.status()).toBe(400);
      await expect(page.getByRole('alert').textContent()).resolves.toContain('Type APPROVE');
      expect(await pendingStill(r.id, r.nonce)).toBe(true);

      // now properly: the re-shown form, ticked and typed
      for (const label of ['Tested on UAT?', 'Backup location ready?', 'Rollback plan documented?'])
        await page.getByLabel(label).check();
      await page.locator('details.comment summary').click(); // the comment is folded under the buttons
      await page.locator('#comment').fill('Release notes read, UAT checked by QA.');
      await page.locator('#confirm').fill('APPROVE');
      expect(await approve.isEnabled()).toBe(true);
      const file = await screenshot(page, 'approval-page.png');
      expect(statSync(file).size).toBeGreaterThan(5000);
      const [done] = await Promise.all([page.waitForNavigation(), approve.click()]);
      expect(done?.status()).toBe(200);
      await expect(page.locator('h1').textContent()).resolves.toBe('Approved');
      await expect(page.locator('#outcome').textContent()).resolves.toMatch(
        /Approval recorded for deploy .*1 of 1 approvals/,
      );
      await screenshot(page, 'approval-page-done.png');

      const out = await waitFor('the probe to complete', async () => {
        const st = await host.durable.getStatus(r.id);
        return st?.runtimeStatus === 'Completed' ? (st.output as ProbeOutput) : undefined;
      });
      expect(out?.outcome).toBe('Approved');
      expect(out?.decisions[0]).toMatchObject({
        approver: 'alice',
        action: 'approve',
        comment: 'Release notes read, UAT checked by QA.',
      });
      expect(out?.decisions[0].userAgent).toMatch(/Chrome/);
      expect(problems).toEqual([]); // no CSP violation, no external request
    } finally {
      await ctx.close();
    }
  });

  it('without JavaScript the form still refuses Approve until APPROVE is typed, and Reject works', async () => {
    const r = await request();
    const { ctx, page, posts } = await phone(false);
    try {
      await page.goto(r.link);
      for (const label of ['Tested on UAT?', 'Backup location ready?', 'Rollback plan documented?'])
        await page.getByLabel(label).check();
      await page.locator('#approve').click(); // the browser's own validation stops it: no request leaves
      expect(posts).toEqual([]);
      expect(await page.evaluate(`document.getElementById('confirm').validity.valid`)).toBe(false);
      expect(await pendingStill(r.id, r.nonce)).toBe(true);
      await page.locator('details.comment summary').click();
      await page.locator('#comment').fill('wrong build');
      // Reject asks again (a server-rendered second step: no JavaScript needed), keeping the comment
      const [asked] = await Promise.all([page.waitForNavigation(), page.locator('#reject').click()]);
      expect(asked?.status()).toBe(200);
      await expect(page.locator('h1').textContent()).resolves.toBe('Reject the PROD deploy of 1.4.0?');
      expect(await pendingStill(r.id, r.nonce)).toBe(true);
      expect(await page.locator('#comment').inputValue()).toBe('wrong build');
      const [done] = await Promise.all([page.waitForNavigation(), page.locator('#reject-confirm').click()]);
      expect(done?.status()).toBe(200);
      await expect(page.locator('h1').textContent()).resolves.toBe('Rejected');
      // opening the link again says it was used
      const again = await page.goto(r.link);
      expect(again?.status()).toBe(409);
      await expect(page.locator('h1').textContent()).resolves.toBe('This link was already used');
    } finally {
      await ctx.close();
    }
  });
});
