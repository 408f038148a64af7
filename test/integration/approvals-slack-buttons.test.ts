/**
 * Slack buttons in the approval messages, end to end: the REAL deployProd orchestrator in the embedded
 * host (real clock, Azurite), the `prodRequestLinks` activity posting through the product's Slack
 * adapter (Web API `chat.postMessage`) to a fake Slack, an in-memory VM and registry. The buttons are
 * read from what each approver received privately (their own message) and clicked the way Slack
 * delivers a click: a `block_actions` form POST to `/api/slack/interactions`, signed with
 * SLACK_SIGNING_SECRET (Slack's v0 scheme). Approve / Roll back open the modal (`views.open` on the fake
 * Slack); its signed `view_submission` decides. Reject decides on click.
 *
 * Also: the buttons follow SLACK_SIGNING_SECRET (production wiring: settings → prodOptionsFromConfig),
 * an Odoo.sh production move's buttons name the Odoo.sh move (never PROD, no rollback), and Slack's
 * limits (50 blocks, 75 characters per button text, 100/300 per confirm dialog).
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
import { approversSetting, PEOPLE, type Who } from '../support/identities';
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
/** the private message of one kind (approval/reminder/rollback) one approver received for a deploy, newest first */
function messageFor(posts: SlackPost[], instanceId: string, kind: LinkKind, who: Who): SlackPost | undefined {
  return [...posts]
    .reverse()
    .find(
      (p) =>
        p.channel === PEOPLE[who].slack &&
        JSON.stringify(p.body.blocks ?? []).includes(`/api/deployments/${encodeURIComponent(instanceId)}|`) &&
        blocksOf(p).some((b) => b.block_id === `prod-${kind}-links`),
    );
}
/** the buttons of a message */
const buttonsIn = (p: SlackPost) => actionsOf(p).flatMap((b) => b.elements ?? []);

interface ModalView {
  callback_id: string;
  private_metadata: string;
  title: Text;
  blocks: Array<{
    type: string;
    block_id?: string;
    element?: { type: string; options?: Array<{ value: string }> };
  }>;
}

const WAIT = 180_000;

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
        SLACK_BOT_TOKEN: slack.token,
        APPROVERS: approversSetting('alice', 'bob', 'carol'),
      },
    });
  }, 300_000);
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
    await host.durable.startNew('deployProd', {
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
    (await host.durable.waitForCompletion(id, WAIT)).output as ProdDeployResult;
  const pendingOf = async (id: string) =>
    ((await host.durable.getStatus(id))?.customStatus as ProdCustomStatus).pendingApprovals;

  /** POST a payload as Slack does: form body `payload=<json>`, signed v0 with the signing secret */
  async function deliver(payload: Record<string, unknown>) {
    const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
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
    const text = await res.text();
    return { status: res.status, text };
  }
  const userOf = (who: Who) => ({ id: PEOPLE[who].slack, username: who, name: who });
  /** a button click as Slack delivers it; the modal it opened, if any */
  async function click(button: Button, who: Who) {
    const before = slack.views.length;
    const r = await deliver({
      type: 'block_actions',
      user: userOf(who),
      trigger_id: slack.issueTrigger(),
      actions: [{ type: 'button', action_id: button.action_id, value: button.value }],
    });
    const view = slack.views.length > before ? (slack.views.at(-1)!.view as unknown as ModalView) : undefined;
    return { ...r, view };
  }
  /** the modal submitted as Slack does: every box ticked, the word typed (unless told otherwise) */
  async function submit(view: ModalView, who: Who, word?: string) {
    const values: Record<string, Record<string, unknown>> = {};
    for (const b of view.blocks) {
      if (b.type !== 'input' || !b.element || !b.block_id) continue;
      values[b.block_id] = {
        [b.block_id]:
          b.element.type === 'checkboxes'
            ? { type: 'checkboxes', selected_options: b.element.options }
            : {
                type: 'plain_text_input',
                value:
                  b.block_id === 'approval-word'
                    ? (word ?? (view.callback_id.endsWith('rollback') ? 'ROLLBACK' : 'APPROVE'))
                    : null,
              },
      };
    }
    return deliver({
      type: 'view_submission',
      user: userOf(who),
      view: { callback_id: view.callback_id, private_metadata: view.private_metadata, state: { values } },
    });
  }

  it(
    'each approver’s own message carries their buttons with their link’s token; Approve opens the modal and its submission by that approver deploys',
    async () => {
      const d = await start();
      const links = await waitForLinks(slack.posts, d.id, 'approval', WAIT);
      expect(links.map((l) => l.approver).sort()).toEqual(['bob', 'carol']); // four-eyes: none for alice
      expect(messageFor(slack.posts, d.id, 'approval', 'alice')).toBeUndefined();
      for (const who of ['bob', 'carol'] as const) {
        const msg = messageFor(slack.posts, d.id, 'approval', who)!;
        expect(msg.via).toBe('api');
        expect(actionsOf(msg)).toHaveLength(1);
        const [approve, reject] = buttonsIn(msg);
        expect([approve.action_id, reject.action_id]).toEqual(['approval-approve', 'approval-reject']);
        const token = links.find((l) => l.approver === who)!.token;
        expect(approve.value).toBe(token);
        expect(reject.value).toBe(token);
        expect(approve.confirm).toBeUndefined(); // the modal asks instead
        expect(reject.confirm?.title.text).toBe('Reject 1.1.0 for PROD?');
        expect(JSON.stringify(msg.body)).not.toContain(signingKey);
        expect(JSON.stringify(msg.body)).not.toContain(signingSecret);
      }
      const bobMsg = messageFor(slack.posts, d.id, 'approval', 'bob')!;
      const carolMsg = messageFor(slack.posts, d.id, 'approval', 'carol')!;

      // carol's button clicked by bob opens nothing and decides nothing
      const wrong = await click(buttonsIn(carolMsg)[0], 'bob');
      expect(wrong.status).toBe(200);
      expect(wrong.view).toBeUndefined();
      expect(wrong.text).toContain('Nothing was decided');

      // bob's Approve, clicked by bob: the modal, not a decision
      const opened = await click(buttonsIn(bobMsg)[0], 'bob');
      expect(opened.view).toMatchObject({
        callback_id: 'approval-modal-approve',
        title: { text: 'Approve 1.1.0' },
      });
      expect((await pendingOf(d.id)).map((p) => p.approver).sort()).toEqual(['bob', 'carol']);
      // without the typed word: a field error, still nothing
      expect(JSON.parse((await submit(opened.view!, 'bob', 'yes')).text)).toMatchObject({
        response_action: 'errors',
        errors: { 'approval-word': expect.any(String) },
      });
      // carol submitting bob's modal: refused
      expect((await submit(opened.view!, 'carol')).text).toContain('Nothing was decided');
      expect((await pendingOf(d.id)).map((p) => p.approver)).toContain('bob');
      // bob submits: deploys
      expect((await submit(opened.view!, 'bob')).text).toContain('Approval sent');
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
          comment: expect.stringContaining('via Slack modal'),
        }),
      ]);
      expect(d.registry.tags.get('prod-v1.1.0')).toBe(d.registry.tags.get('uat-v1.1.0'));
      // the same submission again: the link is used
      expect((await submit(opened.view!, 'bob')).text).toMatch(/already used|has ended/);
    },
    2 * WAIT,
  );

  it(
    'Reject clicked by its approver ends the deploy; nothing is deployed',
    async () => {
      const d = await start();
      await waitForLinks(slack.posts, d.id, 'approval', WAIT);
      const msg = messageFor(slack.posts, d.id, 'approval', 'carol')!;
      const reject = buttonsIn(msg).find((b) => b.action_id === 'approval-reject')!;
      expect((await click(reject, 'carol')).text).toContain('Rejection sent');
      const result = await finish(d.id);
      expect(result).toMatchObject({ outcome: 'Rejected', prodState: 'unchanged' });
      expect(d.registry.tags.has('prod-v1.1.0')).toBe(false);
      expect(d.vm.state.image).toBe(PROD('1.0.0'));
    },
    2 * WAIT,
  );

  it(
    'a failed deploy posts Roll back buttons (PROD only, no Approve); a click by its approver rolls back',
    async () => {
      const d = await start({ failMigration: true });
      await waitForLinks(slack.posts, d.id, 'approval', WAIT);
      const approveClick = await click(
        buttonsIn(messageFor(slack.posts, d.id, 'approval', 'bob')!)[0],
        'bob',
      );
      expect((await submit(approveClick.view!, 'bob')).text).toContain('Approval sent');
      const rollbackLinks = await waitForLinks(slack.posts, d.id, 'rollback', WAIT);
      const msg = messageFor(slack.posts, d.id, 'rollback', 'carol')!;
      const carol = buttonsIn(msg);
      expect(carol).toHaveLength(1);
      expect(carol[0]).toMatchObject({
        action_id: 'approval-rollback',
        style: 'danger',
        value: rollbackLinks.find((l) => l.approver === 'carol')!.token,
        text: { text: 'Roll back PROD (Carol Nguyen)' },
      });
      const opened = await click(carol[0], 'carol');
      expect(opened.view).toMatchObject({
        callback_id: 'approval-modal-rollback',
        title: { text: 'Roll back PROD' },
      });
      expect(JSON.stringify(opened.view)).toContain('1.0.0 is started again');
      expect(JSON.stringify(opened.view)).not.toContain('checkboxes');
      expect((await submit(opened.view!, 'carol')).text).toContain('Rollback requested');
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
  /** the private messages (one per approver, in order) and the channel's request message (no token) */
  async function posted(
    p: ProdPorts,
    kind: 'approval' | 'reminder' | 'rollback',
    s: ApprovalSummary,
    approvers: string[],
    links = requests(approvers, kind === 'rollback' ? 'rollback' : 'approval'),
  ): Promise<{ mine: SlackPost[]; channel: SlackPost }> {
    const before = slack.posts.length;
    const out = await createProdActivities(p).requestLinks({
      kind,
      instanceId: 'deploy-prod-1.4.0-cccccccccccc',
      links,
      summary: s,
    });
    expect(out).toMatchObject({ posted: approvers.length });
    expect(slack.posts.length).toBe(before + approvers.length + 1);
    const mine = slack.posts.slice(before, before + approvers.length);
    const channel = slack.posts[before + approvers.length];
    expect(JSON.stringify(channel.body)).not.toContain('"button"');
    return { mine, channel };
  }

  it('the buttons follow SLACK_SIGNING_SECRET: without it each private message is the links-only message, otherwise identical', async () => {
    const base = (await ports()).ports;
    const env = { PUBLIC_BASE_URL: host.baseUrl, APPROVERS: approversSetting('bob', 'carol') };
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
      expect(on.mine.map((m) => m.channel)).toEqual([PEOPLE.bob.slack, PEOPLE.carol.slack]);
      on.mine.forEach((m, i) => {
        expect(actionsOf(m).map((b) => b.block_id)).toEqual([`prod-${kind}-buttons-1`]);
        expect(actionsOf(off.mine[i])).toEqual([]);
        expect(JSON.stringify(off.mine[i].body)).not.toContain('"button"');
        // without the secret: the same text and blocks, minus the buttons
        expect(off.mine[i].body.text).toBe(m.body.text);
        expect(blocksOf(off.mine[i])).toEqual(blocksOf(m).filter((b) => b.type !== 'actions'));
        expect(blocksOf(m).findIndex((b) => b.type === 'actions')).toBe(
          blocksOf(m).findIndex((b) => b.block_id === `prod-${kind}-links`) + 1,
        );
      });
    }
  });

  it('an Odoo.sh production move: the buttons and Reject’s confirm dialog name the Odoo.sh move and the branch, never PROD', async () => {
    const p = (await ports()).ports;
    const s = summary({
      environment: 'odoosh-production',
      target: { kind: 'odoosh', branch: 'production', repository: 'acme/odoo-mta', stage: 'production' },
    });
    for (const kind of ['approval', 'reminder'] as const) {
      const { mine, channel } = await posted(p, kind, s, ['bob', 'carol']);
      expect(String(channel.body.text)).toContain(
        'asks for the Odoo.sh production move of 1.4.0 to branch production',
      );
      for (const m of mine)
        expect(String(m.body.text)).toContain('asks to move the Odoo.sh production branch production');
      const buttons = mine.flatMap(buttonsIn);
      expect(buttons.map((b) => b.action_id)).toEqual([
        'approval-approve',
        'approval-reject',
        'approval-approve',
        'approval-reject',
      ]);
      expect(buttons[0].confirm).toBeUndefined();
      expect(buttons[1].confirm?.title.text).toBe(
        'Reject the Odoo.sh production move of 1.4.0 to production?',
      );
      expect(buttons[1].confirm?.text.text).toContain('The branch does not move.');
      const words = JSON.stringify(mine.map(actionsOf));
      expect(words).not.toContain('PROD');
      expect(words).not.toContain('Nothing is deployed');
    }
  });

  it('Slack’s limits: long names and branches fit the button texts and confirm dialogs', async () => {
    const long = `${'x'.repeat(120)}@example.com`;
    const p = (
      await ports({
        approvers: [
          { id: 'bob', name: 'bob', slack: PEOPLE.bob.slack },
          { id: long, name: long, slack: 'U07LONG000' },
        ],
      } as Partial<ProdOptions>)
    ).ports;
    const s = summary({
      target: {
        kind: 'odoosh',
        branch: `release/${'y'.repeat(150)}`,
        repository: 'acme/odoo-mta',
        stage: 'production',
      },
    });
    const { mine } = await posted(p, 'approval', s, ['bob', long]);
    const buttons = mine.flatMap(buttonsIn);
    expect(buttons).toHaveLength(4);
    for (const m of mine) expect(blocksOf(m).length).toBeLessThanOrEqual(50);
    for (const b of buttons) {
      expect(b.text.text.length).toBeLessThanOrEqual(75);
      expect(b.value.length).toBeLessThanOrEqual(2000);
      if (b.confirm) {
        expect(b.confirm.title.text.length).toBeLessThanOrEqual(100);
        expect(b.confirm.text.text.length).toBeLessThanOrEqual(300);
      }
    }
    expect(buttons[2].text.text).toMatch(/^Approve \(x+…\)$/);
    expect(buttons[1].confirm!.title.text).toMatch(
      /^Reject the Odoo\.sh production move of 1\.4\.0 to release\/y+…$/,
    );
  });
});
