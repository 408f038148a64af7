/**
 * The approval door against the REAL deployProd orchestrator (both sides of the approval contract):
 * embedded host, real clock, Azurite, the product's Slack adapter posting to a fake Slack, an in-memory
 * VM and registry. Links come from what Slack received; decisions go through the HTML form exactly as
 * a browser posts it (GET the page, read its hidden fields, POST form-urlencoded).
 */
import { randomBytes } from 'node:crypto';
import type { LocalHost } from '../../local/host';
import type { ProdCustomStatus, ProdDeployResult } from '../../functions/orchestrators/deployProd';
import type { ProdOptions } from '../../functions/activities/prod';
import { createFakeVm } from '../support/fake-vm-shell';
import type { FakeSlack } from '../support/fake-slack';
import { tokenApprover, waitForLinks } from '../support/prod-approval';
import { approversSetting, cookieOf, PEOPLE, type Who } from '../support/identities';
import { prodImage } from '../support/memory-registry';
import { PROD_SHA_NEW, PROD_SHA_OLD, startProdDeploy, startProdHost } from '../support/prod-rig';

const SHA_OLD = PROD_SHA_OLD;
const SHA_NEW = PROD_SHA_NEW;
const PROD = prodImage;
const signingKey = randomBytes(36).toString('base64url');
const WAIT = 180_000;
/** the approval page's form as an approver fills it: the checklist ticked, APPROVE typed */
const APPROVE = {
  decision: 'approve',
  confirm: 'APPROVE',
  check_uat: 'yes',
  check_backup: 'yes',
  check_rollback: 'yes',
};

describe('approval links × deployProd (embedded host)', () => {
  let rig: Awaited<ReturnType<typeof startProdHost>>;
  let host: LocalHost;
  let slack: FakeSlack;
  let n = 0;

  beforeAll(async () => {
    rig = await startProdHost('approvals-prod-', {
      APPROVAL_SIGNING_KEY: signingKey,
      APPROVERS: approversSetting('alice', 'bob', 'carol'),
    });
    ({ host, slack } = rig);
  }, 300_000);
  afterAll(() => rig?.stop());

  async function start(vmBehaviour: Parameters<typeof createFakeVm>[1] = {}, options?: Partial<ProdOptions>) {
    const k = ++n;
    const id = `deploy-prod-1.1.0-bbbbbbbbbbbb-a${k}`;
    const { vm, registry } = await startProdDeploy({
      host,
      slack,
      signingKey,
      container: `approvalsprod${k}`,
      instanceId: id,
      requestedBy: 'alice',
      reason: 'monthly release',
      vmBehaviour,
      options,
    });
    return { id, vm, registry };
  }

  async function openPage(link: string) {
    const res = await fetch(link, { headers: { accept: 'text/html' } });
    const html = await res.text();
    const fields: Record<string, string> = {};
    for (const m of html.matchAll(/<input type="hidden" name="([a-z_]+)" value="([^"]*)">/g))
      fields[m[1]] = m[2];
    return { status: res.status, html, fields };
  }
  async function submit(link: string, form: Record<string, string>) {
    const { fields } = await openPage(link);
    const res = await fetch(link, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        origin: 'null',
        'sec-fetch-site': 'same-origin',
        'user-agent': 'Mozilla/5.0 (Android) approver-phone',
        'x-forwarded-for': '198.51.100.7:4000',
        // the link's own approver, signed in (test/security/approvals-identity.test.ts tries everyone else)
        cookie: cookieOf(host.keys.masterKey, tokenApprover(link.split('/').pop()!) as Who),
      },
      body: new URLSearchParams({ ...fields, ...form }).toString(),
    });
    return { status: res.status, html: await res.text() };
  }
  const finish = async (id: string) =>
    (await host.durable.waitForCompletion(id, WAIT)).output as ProdDeployResult;

  it(
    'the page shows the real request; an approval on the page deploys, with the decision recorded',
    async () => {
      const d = await start();
      const links = await waitForLinks(slack.posts, d.id, 'approval', WAIT);
      expect(links.map((l) => l.approver).sort()).toEqual(['bob', 'carol']); // four-eyes: none for alice
      const page = await openPage(links.find((l) => l.approver === 'bob')!.url);
      expect(page.status).toBe(200);
      for (const text of [
        'Approve PROD deploy of 1.1.0?',
        'alice',
        'monthly release',
        'Tested on UAT?',
        `https://github.com/acme/odoo-mta/compare/${SHA_OLD}...${SHA_NEW}`,
        '1.0.0',
        d.id,
      ])
        expect(page.html).toContain(text);

      const done = await submit(links.find((l) => l.approver === 'bob')!.url, { ...APPROVE, comment: 'go' });
      expect(done.status).toBe(200);
      expect(done.html).toContain('Approved');
      const result = await finish(d.id);
      expect(result).toMatchObject({
        outcome: 'Succeeded',
        prodState: 'running-new',
        imageRef: PROD('1.1.0'),
        approvals: [{ approver: 'bob' }],
      });
      expect(d.registry.tags.get('prod-v1.1.0')).toBe(d.registry.tags.get('uat-v1.1.0'));
      expect(result.decisions).toEqual([
        expect.objectContaining({
          approver: 'bob',
          action: 'approve',
          verdict: 'accepted',
          comment: 'go',
          ip: '198.51.100.7',
          userAgent: 'Mozilla/5.0 (Android) approver-phone',
        }),
      ]);
      // carol's link now belongs to a deploy that has ended
      const late = await openPage(links.find((l) => l.approver === 'carol')!.url);
      expect(late.status).toBe(410);
      expect(
        ((await host.durable.getStatus(d.id))?.customStatus as ProdCustomStatus).pendingApprovals,
      ).toEqual([]);
    },
    2 * WAIT,
  );

  it(
    'private delivery: each approver received only their own link, the channel only the request and its progress',
    async () => {
      const d = await start();
      const links = await waitForLinks(slack.posts, d.id, 'approval', WAIT);
      expect(links.map((l) => [l.approver, l.user])).toEqual([
        ['bob', PEOPLE.bob.slack],
        ['carol', PEOPLE.carol.slack],
      ]);
      for (const who of ['bob', 'carol'] as const) {
        const inbox = JSON.stringify(
          slack.inbox(PEOPLE[who].slack).filter((p) => JSON.stringify(p.body).includes(d.id)),
        );
        expect(inbox).toContain(links.find((l) => l.approver === who)!.token);
        expect(inbox).not.toContain(links.find((l) => l.approver !== who)!.token);
      }
      expect(slack.inbox(PEOPLE.alice.slack).filter((p) => JSON.stringify(p.body).includes(d.id))).toEqual(
        [],
      ); // the requester
      const channel = slack.channelPosts().filter((p) => JSON.stringify(p.body).includes(d.id));
      expect(channel.length).toBeGreaterThan(0);
      for (const p of channel) {
        expect(JSON.stringify(p.body)).not.toMatch(/\/api\/approvals\//);
        for (const l of links) expect(JSON.stringify(p.body)).not.toContain(l.token.split('.')[1]);
      }
      expect(JSON.stringify(channel[0].body)).toContain('Bob Dupont');
      await submit(links[0].url, APPROVE);
      await finish(d.id);
      const update = slack.updates.find((u) => u.ts === channel[0].ts);
      expect(JSON.stringify(update?.body)).toMatch(/Approved by:\*? Bob Dupont/);
    },
    2 * WAIT,
  );

  it(
    'a failing migration posts rollback links; the ROLLBACK page restores the previous version',
    async () => {
      const d = await start({ failMigration: true });
      const links = await waitForLinks(slack.posts, d.id, 'approval', WAIT);
      expect((await submit(links[0].url, APPROVE)).status).toBe(200);
      const rollback = await waitForLinks(slack.posts, d.id, 'rollback', WAIT);
      const carol = rollback.find((l) => l.approver === 'carol')!;
      const page = await openPage(carol.url);
      expect(page.status).toBe(200);
      expect(page.html).toContain('Roll back PROD from 1.1.0 to 1.0.0?');
      expect(page.html).toContain('<strong>PROD is down.</strong>'); // the migration stopped Odoo
      expect(page.html).toMatch(/What failed<\/dt> <dd>[^<]*migration/);
      expect(page.html).toContain('Type ROLLBACK');
      expect(((await host.durable.getStatus(d.id))?.customStatus as ProdCustomStatus).step).toBe(
        'awaiting-rollback-decision',
      );
      expect((await submit(carol.url, { decision: 'rollback', confirm: 'APPROVE' })).status).toBe(400);
      const done = await submit(carol.url, {
        decision: 'rollback',
        confirm: 'ROLLBACK',
        comment: 'restore now',
      });
      expect(done.status).toBe(200);
      const result = await finish(d.id);
      expect(result).toMatchObject({
        outcome: 'RolledBack',
        prodState: 'rolled-back',
        rollback: { by: 'carol', ok: true },
      });
      expect(d.vm.state.image).toBe(PROD('1.0.0'));
    },
    2 * WAIT,
  );

  it(
    'a reminder before anyone decides; an approval after it still reaches the gate, whose wait went on past the reminder',
    async () => {
      // the request expires after 72 s and reminds 60 s before: the reminder's timer fires after ≈ 12 s,
      // then the gate waits again on the same approval event beside a new timer (what the real engine's
      // out-of-proc shim replays differently from a first wait: durable-js #574)
      const d = await start({}, { approvalTimeoutHours: 0.02, approvalReminderMinutes: 1 });
      const asked = await waitForLinks(slack.posts, d.id, 'approval', WAIT);
      const reminded = await waitForLinks(slack.posts, d.id, 'reminder', WAIT);
      expect(reminded.map((l) => l.approver).sort()).toEqual(['bob', 'carol']); // four-eyes: none for alice
      // the same single-use links again (the request's deadline is unchanged)
      expect(reminded.map((l) => l.url).sort()).toEqual(asked.map((l) => l.url).sort());
      const st = (await host.durable.getStatus(d.id))?.customStatus as ProdCustomStatus;
      expect(st.step).toBe('awaiting-approval');
      const done = await submit(reminded.find((l) => l.approver === 'carol')!.url, APPROVE);
      expect(done.status).toBe(200);
      expect(done.html).toContain('Approved');
      const result = await finish(d.id);
      expect(result).toMatchObject({
        outcome: 'Succeeded',
        prodState: 'running-new',
        approvals: [{ approver: 'carol' }],
      });
      expect(d.vm.state.image).toBe(PROD('1.1.0'));
    },
    2 * WAIT,
  );

  it(
    'nobody decides: the request expires at its deadline, nothing is deployed and a late link is refused',
    async () => {
      const d = await start({}, { approvalTimeoutHours: 0.01, approvalReminderMinutes: 0 }); // 36 s
      const asked = await waitForLinks(slack.posts, d.id, 'approval', WAIT);
      // the 36 s of the request, then as long as any other step may take
      const result = (await host.durable.waitForCompletion(d.id, 36_000 + WAIT)).output as ProdDeployResult;
      expect(result.outcome).toBe('Expired');
      expect(result.approvals ?? []).toEqual([]);
      expect(d.vm.state.image).toBe(PROD('1.0.0'));
      expect(d.registry.tags.get('prod-v1.1.0')).toBeUndefined();
      const late = await submit(asked.find((l) => l.approver === 'bob')!.url, APPROVE);
      expect(late.status).toBe(410);
    },
    36_000 + 2 * WAIT,
  );
});
