/**
 * Slack buttons in the approval messages, end to end: the REAL deployProd orchestrator in the embedded
 * host (real clock, Azurite), the `prodRequestLinks` activity posting through the product's Slack
 * adapter (Web API `chat.postMessage`) to a fake Slack, an in-memory VM and registry. The buttons are
 * read from what Slack received and clicked the way Slack delivers a click: a `block_actions` form POST
 * to `/api/slack/interactions`, signed with SLACK_SIGNING_SECRET (Slack's v0 scheme).
 *
 * Also: the buttons follow SLACK_SIGNING_SECRET (production wiring: settings → prodOptionsFromConfig),
 * an Odoo.sh production move's buttons name the Odoo.sh move (never PROD, no rollback), and Slack's
 * limits (50 blocks, 3000 characters per section, 75 per button text, 100/300 per confirm dialog).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLocalHost, type LocalHost } from '../../local/host';
import {
  createProdActivities,
  prodOptionsFromConfig,
  setProdPorts,
  type ApprovalSummary,
  type LinkRequest,
  type ProdOptions,
  type ProdPorts,
} from '../../functions/activities/prod';
import type { ProdCustomStatus, ProdDeployResult } from '../../functions/orchestrators/deployProd';
import { slackSignature } from '../../functions/slackInteractions';
import { createSlack, type SlackBlock } from '../../shared/adapters/slack';
import { loadConfig } from '../../shared/config';
import { createFakeVm } from '../support/fake-vm-shell';
import { startFakeSlack, type FakeSlack, type SlackPost } from '../support/fake-slack';
import { waitForLinks, type LinkKind } from '../support/prod-approval';
import { prodImage, uatImage } from '../support/memory-registry';
import { PROD_SHA_NEW, prodRig } from '../support/prod-rig';

const SHA_NEW = PROD_SHA_NEW;
const UAT = uatImage;
const PROD = prodImage;
const signingKey = randomBytes(36).toString('base64url');
const signingSecret = randomBytes(24).toString('hex');

interface Text {
  type: string;
  text: string;
}
interface Button {
  type: string;
  action_id: string;
  text: Text;
  value: string;
  style?: string;
  confirm?: { title: Text; text: Text; confirm: Text; deny: Text };
}
type Block = SlackBlock & { block_id?: string; text?: Text; elements?: Button[] };

const blocksOf = (p: SlackPost) => (p.body.blocks ?? []) as Block[];
const actionsOf = (p: SlackPost) => blocksOf(p).filter((b) => b.type === 'actions');
/** the message of one kind (approval/reminder/rollback) that Slack received for a deploy, newest first */
function messageFor(posts: SlackPost[], instanceId: string, kind: LinkKind): SlackPost | undefined {
  return [...posts]
    .reverse()
    .find(
      (p) =>
        JSON.stringify(p.body.blocks ?? []).includes(`/api/deployments/${encodeURIComponent(instanceId)}|`) &&
        blocksOf(p).some((b) => b.block_id === `prod-${kind}-links`),
    );
}

describe('Slack buttons × deployProd (embedded host, signed block_actions clicks)', () => {
  let dir: string;
  let host: LocalHost;
  let slack: FakeSlack;
  let n = 0;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'approvals-buttons-'));
    slack = await startFakeSlack();
    host = await startLocalHost({
      dataDir: dir,
      port: 0,
      env: {
        LOG_LEVEL: 'error',
        APPROVAL_SIGNING_KEY: signingKey,
        SLACK_SIGNING_SECRET: signingSecret,
        SLACK_API_URL: slack.apiUrl,
      },
    });
  }, 90_000);
  afterAll(async () => {
    setProdPorts(undefined);
    await host?.stop();
    await slack?.stop();
    delete process.env.SLACK_SIGNING_SECRET;
    rmSync(dir, { recursive: true, force: true });
  });

  async function ports(o: Partial<ProdOptions> = {}, vmBehaviour: Parameters<typeof createFakeVm>[1] = {}) {
    const k = ++n;
    const r = await prodRig({
      blobConnectionString: host.blobConnectionString!,
      publicBaseUrl: host.baseUrl,
      container: `approvalsbuttons${k}`,
      signingKey,
      slack: (log) =>
        createSlack({ botToken: slack.token, channel: '#deployments', apiUrl: slack.apiUrl, log }),
      options: { slackButtons: true, ...o },
      vmBehaviour,
    });
    return { k, ...r };
  }

  async function start(vmBehaviour: Parameters<typeof createFakeVm>[1] = {}) {
    const r = await ports({}, vmBehaviour);
    setProdPorts(r.ports);
    const id = `deploy-prod-1.1.0-bbbbbbbbbbbb-s${r.k}`;
    await host.engine.startNew('deployProd', {
      instanceId: id,
      input: {
        environment: 'prod',
        version: '1.1.0',
        sha: SHA_NEW,
        imageRef: UAT('1.1.0'),
        requestedBy: 'alice',
        reason: 'monthly release',
      },
    });
    return { id, ...r };
  }
  const finish = async (id: string) =>
    (await host.engine.waitForCompletion(id, 60_000)).output as ProdDeployResult;
  const pendingOf = (id: string) =>
    (host.engine.getStatus(id)?.customStatus as ProdCustomStatus).pendingApprovals;

  /** a button click as Slack delivers it: form body `payload=<json>`, signed v0 with the signing secret */
  async function click(button: Button, user: string) {
    const body = new URLSearchParams({
      payload: JSON.stringify({
        type: 'block_actions',
        user: { id: `U${user.toUpperCase()}`, username: user, name: user },
        actions: [{ type: 'button', action_id: button.action_id, value: button.value }],
      }),
    }).toString();
    const ts = String(Math.floor(Date.now() / 1000));
    const res = await fetch(`${host.baseUrl}/api/slack/interactions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-slack-request-timestamp': ts,
        'x-slack-signature': slackSignature(signingSecret, ts, body),
        'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
      },
      body,
    });
    return { status: res.status, text: ((await res.json()) as { text: string }).text };
  }
  /** the buttons of one approver in a message, by the name on them */
  const buttonsOf = (p: SlackPost, approver: string) =>
    actionsOf(p)
      .flatMap((b) => b.elements ?? [])
      .filter((e) => e.text.text.endsWith(`(${approver})`));

  it('the approval message carries each approver’s buttons with their link’s token; Approve clicked by that approver deploys', async () => {
    const d = await start();
    const links = await waitForLinks(slack.posts, d.id, 'approval', 60_000);
    const msg = messageFor(slack.posts, d.id, 'approval')!;
    expect(msg.via).toBe('api');
    // links stay (they carry the checklist page); one actions block per approver, after the links
    expect(links.map((l) => l.approver).sort()).toEqual(['bob', 'carol']); // four-eyes: none for alice
    expect(actionsOf(msg)).toHaveLength(2);
    for (const l of links) {
      const [approve, reject] = buttonsOf(msg, l.approver);
      expect([approve.action_id, reject.action_id]).toEqual(['approval-approve', 'approval-reject']);
      expect(approve.value).toBe(l.token);
      expect(reject.value).toBe(l.token);
      expect(approve.confirm?.title.text).toBe('Approve 1.1.0 for PROD?');
      expect(approve.confirm?.text.text).toContain('Tested on UAT: yes');
      expect(reject.confirm?.title.text).toBe('Reject 1.1.0 for PROD?');
    }
    expect(buttonsOf(msg, 'alice')).toEqual([]);
    expect(JSON.stringify(msg.body)).not.toContain(signingKey);
    expect(JSON.stringify(msg.body)).not.toContain(signingSecret);

    // carol's button clicked by bob decides nothing
    const wrong = await click(buttonsOf(msg, 'carol')[0], 'bob');
    expect(wrong.status).toBe(200);
    expect(wrong.text).toContain('This button is for carol');
    expect(
      pendingOf(d.id)
        .map((p) => p.approver)
        .sort(),
    ).toEqual(['bob', 'carol']);

    // bob's Approve, clicked by bob, deploys
    const ok = await click(buttonsOf(msg, 'bob')[0], 'bob');
    expect(ok).toEqual({ status: 200, text: expect.stringContaining('Approval sent') });
    const result = await finish(d.id);
    expect(result).toMatchObject({
      outcome: 'Succeeded',
      prodState: 'running-new',
      imageRef: PROD('1.1.0'),
      approvals: [{ approver: 'bob' }],
    });
    expect(result.decisions).toEqual([
      expect.objectContaining({
        approver: 'bob',
        action: 'approve',
        verdict: 'accepted',
        ip: 'slack',
        comment: expect.stringContaining('via Slack button'),
      }),
    ]);
    expect(d.registry.tags.get('prod-v1.1.0')).toBe(d.registry.tags.get('uat-v1.1.0'));
    // the same button again: the link is used
    expect((await click(buttonsOf(msg, 'bob')[0], 'bob')).text).toMatch(/already used|has ended/);
  }, 120_000);

  it('Reject clicked by its approver ends the deploy; nothing is deployed', async () => {
    const d = await start();
    await waitForLinks(slack.posts, d.id, 'approval', 60_000);
    const msg = messageFor(slack.posts, d.id, 'approval')!;
    const reject = buttonsOf(msg, 'carol').find((b) => b.action_id === 'approval-reject')!;
    expect((await click(reject, 'carol')).text).toContain('Rejection sent');
    const result = await finish(d.id);
    expect(result).toMatchObject({ outcome: 'Rejected', prodState: 'unchanged' });
    expect(d.registry.tags.has('prod-v1.1.0')).toBe(false);
    expect(d.vm.state.image).toBe(PROD('1.0.0'));
  }, 120_000);

  it('a failed deploy posts Roll back buttons (PROD only, no Approve); a click by its approver rolls back', async () => {
    const d = await start({ failMigration: true });
    await waitForLinks(slack.posts, d.id, 'approval', 60_000);
    expect((await click(buttonsOf(messageFor(slack.posts, d.id, 'approval')!, 'bob')[0], 'bob')).status).toBe(
      200,
    );
    const rollbackLinks = await waitForLinks(slack.posts, d.id, 'rollback', 60_000);
    const msg = messageFor(slack.posts, d.id, 'rollback')!;
    expect(actionsOf(msg)).toHaveLength(rollbackLinks.length);
    const carol = buttonsOf(msg, 'carol');
    expect(carol).toHaveLength(1);
    expect(carol[0]).toMatchObject({
      action_id: 'approval-rollback',
      style: 'danger',
      value: rollbackLinks.find((l) => l.approver === 'carol')!.token,
      text: { text: 'Roll back PROD (carol)' },
    });
    expect(carol[0].confirm?.title.text).toBe('Roll back PROD from 1.1.0?');
    expect(carol[0].confirm?.text.text).toContain('1.0.0 is started again');
    expect((await click(carol[0], 'carol')).text).toContain('Rollback request sent');
    const result = await finish(d.id);
    expect(result).toMatchObject({
      outcome: 'RolledBack',
      prodState: 'rolled-back',
      rollback: { by: 'carol', ok: true },
    });
    expect(d.vm.state.image).toBe(PROD('1.0.0'));
  }, 120_000);

  // ---- the message itself, through the prodRequestLinks activity and the product's Slack adapter

  const summary = (o: Partial<ApprovalSummary> = {}): ApprovalSummary => ({
    environment: 'prod',
    version: '1.4.0',
    sha: SHA_NEW,
    requestedBy: 'alice',
    reason: 'release',
    required: 1,
    fourEyes: true,
    expiresAt: new Date(Date.now() + 3600_000).toISOString(),
    statusUrl: `${host.baseUrl}/api/deployments/deploy-prod-1.4.0-cccccccccccc`,
    ...o,
  });
  const requests = (approvers: string[], action: LinkRequest['action'] = 'approval'): LinkRequest[] =>
    approvers.map((approver, i) => ({
      approver,
      nonce: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      action,
      exp: Date.now() + 3600_000,
    }));
  async function posted(
    p: ProdPorts,
    kind: 'approval' | 'reminder' | 'rollback',
    s: ApprovalSummary,
    approvers: string[],
    links = requests(approvers, kind === 'rollback' ? 'rollback' : 'approval'),
  ): Promise<SlackPost> {
    const before = slack.posts.length;
    const out = await createProdActivities(p).requestLinks({
      kind,
      instanceId: 'deploy-prod-1.4.0-cccccccccccc',
      links,
      summary: s,
    });
    expect(out).toEqual({ posted: approvers.length });
    expect(slack.posts.length).toBe(before + 1);
    return slack.posts[before];
  }

  it('the buttons follow SLACK_SIGNING_SECRET: without it the message is the links-only message, otherwise identical', async () => {
    const base = (await ports()).ports;
    const env = { PUBLIC_BASE_URL: host.baseUrl, APPROVERS: 'bob,carol' };
    const withSecret = {
      ...base,
      options: {
        ...base.options,
        ...prodOptionsFromConfig(loadConfig({ ...env, SLACK_SIGNING_SECRET: signingSecret })),
      },
    };
    const without = { ...base, options: { ...base.options, ...prodOptionsFromConfig(loadConfig(env)) } };
    for (const kind of ['approval', 'reminder', 'rollback'] as const) {
      const s = summary({ previousVersion: '1.3.0' });
      const links = requests(['bob', 'carol'], kind === 'rollback' ? 'rollback' : 'approval');
      const on = await posted(withSecret, kind, s, ['bob', 'carol'], links);
      const off = await posted(without, kind, s, ['bob', 'carol'], links);
      expect(actionsOf(on).map((b) => b.block_id)).toEqual([
        `prod-${kind}-buttons-1`,
        `prod-${kind}-buttons-2`,
      ]);
      expect(actionsOf(off)).toEqual([]);
      expect(JSON.stringify(off.body)).not.toContain('"button"');
      // without the secret: the same text and blocks, minus the buttons (the tokens are the same: same claims, same key)
      expect(off.body.text).toBe(on.body.text);
      expect(blocksOf(off)).toEqual(blocksOf(on).filter((b) => b.type !== 'actions'));
      expect(blocksOf(on).findIndex((b) => b.type === 'actions')).toBe(
        blocksOf(on).findIndex((b) => b.block_id === `prod-${kind}-links`) + 1,
      );
    }
  });

  it('an Odoo.sh production move: the buttons and their confirm dialogs name the Odoo.sh move and the branch, never PROD', async () => {
    const p = (await ports()).ports;
    const s = summary({
      environment: 'odoosh-production',
      target: { kind: 'odoosh', branch: 'production', repository: 'acme/odoo-mta', stage: 'production' },
    });
    for (const kind of ['approval', 'reminder'] as const) {
      const msg = await posted(p, kind, s, ['bob', 'carol']);
      expect(String(msg.body.text)).toContain('asks to move the Odoo.sh production branch production');
      const buttons = actionsOf(msg).flatMap((b) => b.elements ?? []);
      expect(buttons.map((b) => b.action_id)).toEqual([
        'approval-approve',
        'approval-reject',
        'approval-approve',
        'approval-reject',
      ]);
      const approve = buttons[0];
      expect(approve.confirm?.title.text).toBe('Approve the Odoo.sh production move of 1.4.0 to production?');
      expect(buttons[1].confirm?.text.text).toContain('The branch does not move.');
      const words = JSON.stringify(actionsOf(msg));
      expect(words).not.toContain('PROD');
      expect(words).not.toContain('Nothing is deployed');
    }
  });

  it('Slack’s limits: too many approvers for 50 blocks → links only (sections ≤ 3000 characters) and a line saying why; long names fit the buttons', async () => {
    const p = (await ports()).ports;
    const many = Array.from({ length: 60 }, (_, i) => `approver-${String(i).padStart(2, '0')}@example.com`);
    const big = await posted(p, 'approval', summary(), many);
    const blocks = blocksOf(big);
    expect(blocks.length).toBeLessThanOrEqual(50);
    expect(actionsOf(big)).toEqual([]);
    expect(blocks.find((b) => b.block_id === 'prod-approval-buttons-none')?.elements?.[0].text).toContain(
      '60 approvers need more than the 50 blocks Slack allows',
    );
    const linkSections = blocks.filter((b) => b.block_id?.startsWith('prod-approval-links'));
    expect(linkSections.length).toBeGreaterThan(1);
    for (const b of linkSections) expect(b.text!.text.length).toBeLessThanOrEqual(3000);
    const lines = linkSections.flatMap((b) => b.text!.text.split('\n'));
    expect(lines.map((l) => /^• \*([^*]+)\*: </.exec(l)?.[1])).toEqual(many); // every approver keeps a link

    // within the limit: every text fits Slack's field limits, however long the name or branch
    const long = `${'x'.repeat(120)}@example.com`;
    const s = summary({
      target: {
        kind: 'odoosh',
        branch: `release/${'y'.repeat(150)}`,
        repository: 'acme/odoo-mta',
        stage: 'production',
      },
    });
    const msg = await posted(p, 'approval', s, ['bob', long]);
    const buttons = actionsOf(msg).flatMap((b) => b.elements ?? []);
    expect(buttons).toHaveLength(4);
    for (const b of buttons) {
      expect(b.text.text.length).toBeLessThanOrEqual(75);
      expect(b.value.length).toBeLessThanOrEqual(2000);
      expect(b.confirm!.title.text.length).toBeLessThanOrEqual(100);
      expect(b.confirm!.text.text.length).toBeLessThanOrEqual(300);
    }
    expect(buttons[2].text.text).toMatch(/^Approve \(x+…\)$/);
    expect(buttons[0].confirm!.title.text).toMatch(
      /^Approve the Odoo\.sh production move of 1\.4\.0 to release\/y+…$/,
    );
  });
});
