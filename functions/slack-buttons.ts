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
 * The Block Kit `actions` block of one approver: Approve + Reject for an approval, Roll back for a PROD
 * rollback. Approve and Roll back decide nothing on click: the click opens the approval modal
 * (`approvalModal`, the checklist and the typed word) and its `view_submission` decides. Reject decides
 * on click, after Slack's confirm dialog (as on the page, a rejection needs neither checklist nor
 * word; one rejection ends the request). Throws when asked for a rollback
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
        value: o.token, // opens the modal (approvalModal): the typed word ROLLBACK decides
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
      value: o.token, // opens the modal (approvalModal): the checklist and the typed word APPROVE decide
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

// ------------------------------------------------------------------------------------------------
// The approval modal (issue #15): Approve and Roll back open it (views.open); its signed
// view_submission decides. Slack's limits: title, submit and close ≤ 24 characters, private_metadata
// ≤ 3000, ≤ 10 checkbox options, option text ≤ 75, input label ≤ 2000.

export const SLACK_MAX_VIEW_TITLE = 24;
export const SLACK_MAX_PRIVATE_METADATA = 3000;
export const MODAL_CALLBACK = {
  approve: 'approval-modal-approve',
  rollback: 'approval-modal-rollback',
} as const;
/** block ids (= action ids) of the modal's inputs; `view_submission` reads `state.values[block][block]` */
export const MODAL_BLOCKS = {
  checklist: 'approval-checklist',
  word: 'approval-word',
  comment: 'approval-comment',
};
export const MODAL_MAX_COMMENT = 2000;

export interface ApprovalModalInput extends ButtonSubject {
  approver: string;
  action: 'approve' | 'rollback';
  token: string;
}

/** The word the approver types in the modal (the same as on the web page). */
export const modalWord = (action: 'approve' | 'rollback') => (action === 'rollback' ? 'ROLLBACK' : 'APPROVE');

/** Slack's view JSON for `views.open`: checklist (Approve only; every box required), the typed word, a comment. */
export function approvalModal(o: ApprovalModalInput): Record<string, unknown> {
  if (o.token.length > SLACK_MAX_PRIVATE_METADATA)
    throw new Error(
      `an approval token of ${o.token.length} characters does not fit a modal's private_metadata`,
    );
  const word = modalWord(o.action);
  const env = o.environment ?? 'PROD';
  const intro =
    o.action === 'rollback'
      ? `Roll back ${env} from ${esc(o.version)}: ${esc(o.previousVersion ?? 'the previous image')} is started again and the backup taken just before ${esc(o.version)} was deployed is restored.`
      : `Approve ${esc(subjectWords(o))}. Tick every box and type ${word}.`;
  const blocks: Array<Record<string, unknown>> = [
    {
      type: 'section',
      text: { type: 'mrkdwn', text: clip(`${intro}\nDecision of *${esc(o.approver)}*.`, 3000) },
    },
  ];
  if (o.action === 'approve')
    blocks.push({
      type: 'input',
      block_id: MODAL_BLOCKS.checklist,
      label: plain('Checklist (every box is required)', 2000),
      element: {
        type: 'checkboxes',
        action_id: MODAL_BLOCKS.checklist,
        options: CHECKLIST.map((c) => ({ text: plain(c.label, 75), value: c.name })),
      },
    });
  blocks.push(
    {
      type: 'input',
      block_id: MODAL_BLOCKS.word,
      label: plain(`Type ${word} to confirm`, 2000),
      element: { type: 'plain_text_input', action_id: MODAL_BLOCKS.word, max_length: 20 },
    },
    {
      type: 'input',
      block_id: MODAL_BLOCKS.comment,
      optional: true,
      label: plain('Comment', 2000),
      element: {
        type: 'plain_text_input',
        action_id: MODAL_BLOCKS.comment,
        multiline: true,
        max_length: MODAL_MAX_COMMENT,
      },
    },
  );
  return {
    type: 'modal',
    callback_id: MODAL_CALLBACK[o.action],
    private_metadata: o.token,
    title: plain(o.action === 'rollback' ? `Roll back ${env}` : `Approve ${o.version}`, SLACK_MAX_VIEW_TITLE),
    submit: plain(o.action === 'rollback' ? 'Roll back' : 'Approve', SLACK_MAX_VIEW_TITLE),
    close: plain('Cancel', SLACK_MAX_VIEW_TITLE),
    blocks,
  };
}

/** A modal that only tells the outcome (the answer to a view_submission: `response_action: update`). */
export function resultModal(title: string, text: string): Record<string, unknown> {
  return {
    type: 'modal',
    title: plain(title, SLACK_MAX_VIEW_TITLE),
    close: plain('Close', SLACK_MAX_VIEW_TITLE),
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text: clip(text, 3000) } }],
  };
}
