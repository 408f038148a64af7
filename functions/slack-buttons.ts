/**
 * Block Kit buttons for the approval messages (the second way to decide, next to the links): one
 * `actions` block per approver, each button's `value` the SAME signed approval token as that approver's
 * link. Clicks come back to `POST /api/slack/interactions` (functions/slackInteractions.ts), which checks
 * Slack's request signature, the token and that the clicking user is the token's approver.
 *
 * Pure builders (no I/O, no registration of their own): used by the `prodRequestLinks` activity
 * (functions/activities/prod.ts) when SLACK_SIGNING_SECRET is set.
 *
 * Slack's Block Kit limits, enforced here (Slack answers `invalid_blocks` and posts nothing otherwise):
 * button text ≤ 75 characters, `value` ≤ 2000, confirm dialog title ≤ 100, its text ≤ 300, its
 * confirm/deny buttons ≤ 30, ≤ 25 elements per actions block (we use ≤ 2), ≤ 50 blocks per message
 * (the caller decides: `SLACK_MAX_BLOCKS`).
 */
import { CHECKLIST } from './approvals';

export const SLACK_MAX_BLOCKS = 50;
export const SLACK_MAX_BUTTON_TEXT = 75;
export const SLACK_MAX_BUTTON_VALUE = 2000;
export const SLACK_MAX_CONFIRM_TITLE = 100;
export const SLACK_MAX_CONFIRM_TEXT = 300;

/** What a button decides on (the wording follows it). */
export interface ButtonSubject {
  /** e.g. "1.4.0" */
  version: string;
  /** the environment in capitals, e.g. "PROD" (default) */
  environment?: string;
  /** set: an Odoo.sh branch move, not a PROD VM deploy (no rollback button exists for it) */
  odoosh?: { stage: string; branch: string };
  /** rollback: what is started again (e.g. "1.3.0") */
  previousVersion?: string;
}

export interface ApprovalButtonsInput extends ButtonSubject {
  approver: string;
  action: 'approval' | 'rollback';
  /** the approver's signed approval token (the same as in their link) */
  token: string;
  /** unique per message (Slack requires unique block ids); optional */
  blockId?: string;
}

interface PlainText {
  type: 'plain_text';
  text: string;
  emoji?: boolean;
}
interface Confirm {
  title: PlainText;
  text: { type: 'mrkdwn'; text: string };
  confirm: PlainText;
  deny: PlainText;
  style?: 'primary' | 'danger';
}
export interface SlackButton {
  type: 'button';
  action_id: string;
  text: PlainText;
  style?: 'primary' | 'danger';
  value: string;
  confirm?: Confirm;
}
export interface ActionsBlock {
  type: 'actions';
  block_id?: string;
  elements: SlackButton[];
  [k: string]: unknown;
}

/** cut to `max` characters, marking the cut with an ellipsis */
export function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const plain = (text: string, max: number): PlainText => ({
  type: 'plain_text',
  text: clip(text, max),
  emoji: false,
});
/** "Approve (alice)" with the approver's name shortened so the whole text fits Slack's 75 characters */
const labelled = (verb: string, approver: string) =>
  `${verb} (${clip(approver, SLACK_MAX_BUTTON_TEXT - verb.length - 3)})`;
function confirm(title: string, text: string, ok: string, style: 'primary' | 'danger'): Confirm {
  return {
    title: plain(title, SLACK_MAX_CONFIRM_TITLE),
    text: { type: 'mrkdwn', text: clip(text, SLACK_MAX_CONFIRM_TEXT) },
    confirm: plain(ok, 30),
    deny: plain('Cancel', 30),
    style,
  };
}

/** "1.4.0 for PROD" / "the Odoo.sh production move of 1.4.0 to production" */
export function subjectWords(s: ButtonSubject): string {
  return s.odoosh
    ? `the Odoo.sh ${s.odoosh.stage} move of ${s.version} to ${s.odoosh.branch}`
    : `${s.version} for ${s.environment ?? 'PROD'}`;
}

/**
 * The Block Kit `actions` block of one approver: Approve + Reject for an approval (Approve's confirm
 * dialog repeats the page's checklist, because a button can hold neither checkboxes nor a typed word —
 * whoever wants those uses the link), Roll back for a PROD rollback. Throws when asked for a rollback
 * button of an Odoo.sh move (there is none) or when the token does not fit a button's value.
 */
export function approvalButtons(o: ApprovalButtonsInput): ActionsBlock {
  if (o.token.length > SLACK_MAX_BUTTON_VALUE)
    throw new Error(
      `an approval token of ${o.token.length} characters does not fit a Slack button value (${SLACK_MAX_BUTTON_VALUE})`,
    );
  const env = o.environment ?? 'PROD';
  const what = subjectWords(o);
  const block = (elements: SlackButton[]): ActionsBlock => ({
    type: 'actions',
    ...(o.blockId ? { block_id: o.blockId } : {}),
    elements,
  });
  if (o.action === 'rollback') {
    if (o.odoosh) throw new Error('an Odoo.sh move has no rollback button');
    return block([
      {
        type: 'button',
        action_id: 'approval-rollback',
        text: plain(labelled(`Roll back ${env}`, o.approver), SLACK_MAX_BUTTON_TEXT),
        style: 'danger',
        value: o.token,
        confirm: confirm(
          `Roll back ${env} from ${o.version}?`,
          `${esc(o.previousVersion ?? 'The previous image')} is started again and the backup taken just before ${esc(o.version)} was deployed (database + filestore) is restored.`,
          'Roll back',
          'danger',
        ),
      },
    ]);
  }
  const nothing = o.odoosh ? 'The branch does not move.' : 'Nothing is deployed.';
  return block([
    {
      type: 'button',
      action_id: 'approval-approve',
      text: plain(labelled('Approve', o.approver), SLACK_MAX_BUTTON_TEXT),
      style: 'primary',
      value: o.token,
      confirm: confirm(
        `Approve ${what}?`,
        `By approving you confirm:\n${CHECKLIST.map((c) => `• ${c.label.replace(/\?$/, '')}: yes`).join('\n')}`,
        'Approve',
        'primary',
      ),
    },
    {
      type: 'button',
      action_id: 'approval-reject',
      text: plain(labelled('Reject', o.approver), SLACK_MAX_BUTTON_TEXT),
      style: 'danger',
      value: o.token,
      // a phone tap is easy to make by accident: one reject ends the request
      confirm: confirm(`Reject ${what}?`, `One rejection ends the request. ${nothing}`, 'Reject', 'danger'),
    },
  ]);
}
