/**
 * Issue #15 in Slack, tried as an attacker would against the embedded host (real HTTP, the real
 * `POST /api/slack/interactions` function, Azurite for the used-link markers and the audit trail, the
 * fake Slack Web API for `views.open`): a decision counts only from the approver's own Slack user,
 * through the modal's signed `view_submission` with every box ticked and the typed word.
 * The approval contract is kept by the approval probe orchestrator (deployProd's custom status).
 * On the code before the modal, the first test failed (a click on Approve decided at once).
 */
import { rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { LocalHost } from '../../local/host';
import { signApprovalToken, signingKeys } from '../../shared/domain/approval-token';
import { slackSignature } from '../../functions/slackInteractions';
import { approvalButtons } from '../../functions/slack-buttons';
import {
  probeRequests,
  startApprovalHost,
  waitFor,
  type ProbeOutput,
  PROBE_TEST_MS,
} from '../support/approval-probe';
import { approversSetting, PEOPLE, type Who } from '../support/identities';
import { startFakeSlack, type FakeSlack } from '../support/fake-slack';

jest.setTimeout(PROBE_TEST_MS);

const key = randomBytes(36).toString('base64url');
const secret = randomBytes(24).toString('hex');

interface View {
  type: string;
  callback_id: string;
  private_metadata: string;
  title: { text: string };
  submit: { text: string };
  close: { text: string };
  blocks: Array<{
    type: string;
    block_id?: string;
    optional?: boolean;
    element?: { type: string; action_id: string; options?: Array<{ value: string; text: { text: string } }> };
  }>;
}

describe('Slack decisions only from the approver’s own Slack user, through the modal (security)', () => {
  let dir: string;
  let host: LocalHost;
  let slack: FakeSlack;

  beforeAll(
    async () => {
      slack = await startFakeSlack();
      ({ host, dir } = await startApprovalHost('sec-slack-modal-', {
        APPROVAL_SIGNING_KEY: key,
        APPROVERS: approversSetting('alice', 'bob', 'carol'),
        SLACK_SIGNING_SECRET: secret,
        SLACK_BOT_TOKEN: slack.token,
        SLACK_API_URL: slack.apiUrl,
      }));
    },
    Math.max(90_000, PROBE_TEST_MS),
  );
  afterAll(async () => {
    await host?.stop();
    await slack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** carol asks; alice and bob each get a token (the probe keeps deployProd's approval contract). */
  const { stillPending, request, auditRecords } = probeRequests({
    host: () => host,
    key: () => signingKeys({ APPROVAL_SIGNING_KEY: key })[0],
    idFill: 'f',
  });

  /** POST what Slack POSTs: form body `payload=<json>`, signed v0 (or as the caller says) */
  async function send(
    payload: Record<string, unknown>,
    o: { ts?: number; sign?: (ts: string, body: string) => string | undefined } = {},
  ) {
    const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
    const ts = String(o.ts ?? Math.floor(Date.now() / 1000));
    const sig = o.sign ? o.sign(ts, body) : slackSignature(secret, ts, body);
    const res = await fetch(`${host.baseUrl}/api/slack/interactions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-slack-request-timestamp': ts,
        ...(sig ? { 'x-slack-signature': sig } : {}),
        'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
      },
      body,
    });
    const text = await res.text();
    let json: Record<string, unknown> | undefined;
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      /* plain text */
    }
    return { status: res.status, text, json };
  }
  const userOf = (who: Who) => ({ id: PEOPLE[who].slack, username: PEOPLE[who].id, name: PEOPLE[who].id });

  /** a click on a button as the product builds it (the token's Approve or Roll back) */
  async function click(token: string, who: Who, which: 'approve' | 'reject' | 'rollback' = 'approve') {
    const block = approvalButtons({
      version: '1.4.0',
      approver: 'x',
      action: which === 'rollback' ? 'rollback' : 'approval',
      token,
    });
    const button = block.elements.find((e) => e.action_id.endsWith(which))!;
    const before = slack.views.length;
    const res = await send({
      type: 'block_actions',
      user: userOf(who),
      trigger_id: slack.issueTrigger(),
      actions: [{ type: 'button', action_id: button.action_id, value: button.value }],
    });
    return {
      ...res,
      view: slack.views.length > before ? (slack.views.at(-1)!.view as unknown as View) : undefined,
    };
  }

  /** the modal submitted as Slack does: state.values[block_id][action_id] */
  function submission(
    view: View,
    who: Who,
    o: { boxes?: readonly string[]; word?: string | null; comment?: string; metadata?: string } = {},
  ) {
    const values: Record<string, Record<string, unknown>> = {};
    for (const b of view.blocks) {
      if (b.type !== 'input' || !b.element) continue;
      const e = b.element;
      if (e.type === 'checkboxes') {
        const boxes = o.boxes ?? e.options!.map((x) => x.value);
        values[b.block_id!] = {
          [e.action_id]: {
            type: 'checkboxes',
            selected_options: e.options!.filter((x) => boxes.includes(x.value)),
          },
        };
      } else if (b.block_id === 'approval-comment') {
        values[b.block_id] = { [e.action_id]: { type: 'plain_text_input', value: o.comment ?? null } };
      } else {
        const word =
          o.word === undefined ? (view.callback_id.endsWith('rollback') ? 'ROLLBACK' : 'APPROVE') : o.word;
        values[b.block_id!] = { [e.action_id]: { type: 'plain_text_input', value: word } };
      }
    }
    return {
      type: 'view_submission',
      user: userOf(who),
      view: {
        id: 'V0000001',
        type: 'modal',
        callback_id: view.callback_id,
        private_metadata: o.metadata ?? view.private_metadata,
        state: { values },
      },
    };
  }

  it(
    'a click on Approve decides nothing: it opens the modal (checklist, typed word) for the approver',
    async () => {
      const r = await request();
      const c = await click(r.tokens[1], 'bob');
      expect(c.status).toBe(200);
      expect(c.view).toBeDefined();
      expect(await stillPending(r.id, r.pending[1].nonce)).toBe(true);
      await new Promise((res) => setTimeout(res, 500));
      expect(await stillPending(r.id, r.pending[1].nonce)).toBe(true);
      const v = c.view!;
      expect(v.type).toBe('modal');
      expect(v.private_metadata).toBe(r.tokens[1]);
      for (const t of [v.title.text, v.submit.text, v.close.text]) expect(t.length).toBeLessThanOrEqual(24);
      const boxes = v.blocks.find((b) => b.element?.type === 'checkboxes')!;
      expect(boxes.optional).toBeFalsy();
      expect(boxes.element!.options!.map((o) => o.text.text)).toEqual([
        'Tested on UAT?',
        'Backup location ready?',
        'Rollback plan documented?',
      ]);
      expect(JSON.stringify(v)).toContain('Type APPROVE');
      expect(JSON.stringify(v)).not.toContain(key);
    },
    PROBE_TEST_MS,
  );

  it(
    'another Slack user clicking a valid token gets no modal; the attempt is recorded',
    async () => {
      const r = await request();
      const c = await click(r.tokens[0], 'carol'); // alice's button, carol (the requester) clicks
      expect(c.view).toBeUndefined();
      expect(c.text).toContain('Nothing was decided');
      expect(await auditRecords(r.id)).toEqual([
        expect.objectContaining({ approver: 'alice', attemptedBy: `slack:${PEOPLE.carol.slack}` }),
      ]);
    },
    PROBE_TEST_MS,
  );

  it(
    "another user's view_submission with a valid token is refused and recorded; the link still works for its approver",
    async () => {
      const r = await request();
      const { view } = await click(r.tokens[0], 'alice');
      const res = await send(submission(view!, 'carol'));
      expect(res.status).toBe(200);
      expect(res.json).toMatchObject({ response_action: 'update' });
      expect(JSON.stringify(res.json)).toContain('Nothing was decided');
      expect(await stillPending(r.id, r.pending[0].nonce)).toBe(true);
      expect(await auditRecords(r.id)).toEqual([
        expect.objectContaining({
          approver: 'alice',
          nonce: r.pending[0].nonce,
          attemptedBy: `slack:${PEOPLE.carol.slack}`,
          why: 'identity-mismatch',
        }),
      ]);
      // bob (an approver too, but not of this token) is refused the same way
      await send(submission(view!, 'bob'));
      expect(await stillPending(r.id, r.pending[0].nonce)).toBe(true);
      // alice herself decides
      const ok = await send(submission(view!, 'alice'));
      expect(JSON.stringify(ok.json)).toContain('Approval sent');
      await waitFor('decided', async () =>
        (await stillPending(r.id, r.pending[0].nonce)) ? undefined : true,
      );
    },
    PROBE_TEST_MS,
  );

  it(
    'a submission without the typed word or without a box is refused with field errors; nothing is decided',
    async () => {
      const r = await request();
      const { view } = await click(r.tokens[1], 'bob');
      for (const [o, block] of [
        [{ word: null }, 'approval-word'],
        [{ word: 'approve' }, 'approval-word'],
        [{ word: 'APPROVED' }, 'approval-word'],
        [{ boxes: ['check_uat', 'check_backup'] }, 'approval-checklist'],
        [{ boxes: [] }, 'approval-checklist'],
      ] as const) {
        const res = await send(submission(view!, 'bob', o));
        expect(res.status).toBe(200);
        expect(res.json).toEqual({ response_action: 'errors', errors: { [block]: expect.any(String) } });
      }
      expect(await stillPending(r.id, r.pending[1].nonce)).toBe(true);
      expect(await auditRecords(r.id)).toEqual([]);
    },
    PROBE_TEST_MS,
  );

  it(
    'a forged, unsigned, stale or tampered submission is refused; nothing is decided',
    async () => {
      const r = await request();
      const { view } = await click(r.tokens[1], 'bob');
      const good = submission(view!, 'bob');
      const wrongKey = randomBytes(24).toString('hex');
      expect((await send(good, { sign: () => undefined })).status).toBe(401);
      expect((await send(good, { sign: (ts, b) => slackSignature(wrongKey, ts, b) })).status).toBe(401);
      const old = Math.floor(Date.now() / 1000) - 6 * 60;
      expect((await send(good, { ts: old, sign: (ts, b) => slackSignature(secret, ts, b) })).status).toBe(
        401,
      );
      // signed correctly but the token forged: another nonce, or signed with a key the server does not hold
      const forged = signApprovalToken(
        {
          instanceId: r.id,
          approver: 'bob',
          action: 'approval',
          nonce: r.pending[1].nonce,
          exp: Date.now() + 3600_000,
        },
        signingKeys({ APPROVAL_SIGNING_KEY: randomBytes(36).toString('base64url') })[0],
      );
      const f = await send(submission(view!, 'bob', { metadata: forged }));
      expect(f.json).toMatchObject({ response_action: 'update' });
      expect(JSON.stringify(f.json)).toContain('Nothing was decided');
      const tampered = await send(submission(view!, 'bob', { metadata: `${r.tokens[1].slice(0, -2)}xx` }));
      expect(JSON.stringify(tampered.json)).toContain('Nothing was decided');
      expect(await stillPending(r.id, r.pending[1].nonce)).toBe(true);
    },
    PROBE_TEST_MS,
  );

  it(
    "the right user's submission approves exactly once; a replay is refused",
    async () => {
      const r = await request();
      const { view } = await click(r.tokens[1], 'bob');
      const sub = submission(view!, 'bob', { comment: 'checked the backup' });
      const [a, b] = await Promise.all([send(sub), send(sub)]);
      const texts = [JSON.stringify(a.json), JSON.stringify(b.json)];
      expect(texts.filter((t) => t.includes('Approval sent'))).toHaveLength(1);
      await waitFor('decided', async () =>
        (await stillPending(r.id, r.pending[1].nonce)) ? undefined : true,
      );
      const again = await send(sub);
      expect(JSON.stringify(again.json)).toMatch(/already used|no longer pending|has ended/);
      const out = (await host.durable.waitForCompletion(r.id, 30_000)).output as ProbeOutput;
      expect(out.decisions).toEqual([
        expect.objectContaining({
          approver: 'bob',
          action: 'approve',
          accepted: true,
          decidedBy: `slack:${PEOPLE.bob.slack}`,
          comment: expect.stringContaining('checked the backup'),
        }),
      ]);
    },
    PROBE_TEST_MS,
  );

  it(
    'Reject still decides on click (after Slack’s confirm dialog), only for its approver',
    async () => {
      const r = await request();
      const wrong = await click(r.tokens[1], 'alice', 'reject');
      expect(wrong.text).toContain('Nothing was decided');
      expect(await stillPending(r.id, r.pending[1].nonce)).toBe(true);
      const ok = await click(r.tokens[1], 'bob', 'reject');
      expect(ok.text).toContain('Rejection sent');
      expect(ok.view).toBeUndefined();
    },
    PROBE_TEST_MS,
  );
});
