/**
 * Slack notifications: an incoming webhook (SLACK_WEBHOOK_URL) or the Web API `chat.postMessage`
 * (SLACK_BOT_TOKEN + SLACK_CHANNEL). With the bot token also the approvals' private side: a message to
 * one user (`chat.postMessage` with `channel` = their user id), `chat.update` of the channel's request
 * message (progress), and `views.open` (the approval modal). Block Kit messages, link unfurling off (Slack's servers fetch every
 * posted URL otherwise). `post()` throws coded errors; callers on a deploy path use `postQuietly()`,
 * which never throws — a failed notification never fails a deploy.
 */
import { PipelineError, messageOf } from '../domain/errors';
import type { Logger } from '../log';

export interface SlackBlock {
  type: string;
  [k: string]: unknown;
}
export interface SlackMessage {
  /** fallback text (notifications, screen readers) */
  text: string;
  blocks?: SlackBlock[];
}

export interface SlackOptions {
  webhookUrl?: string;
  botToken?: string;
  channel?: string;
  apiUrl?: string;
  timeoutMs?: number;
  log?: Logger;
}

/** Where a Web API message landed (`chat.update` needs both). */
export interface PostedMessage {
  channel: string;
  ts: string;
}

export interface SlackPort {
  readonly enabled: boolean;
  /** the Web API is available (SLACK_BOT_TOKEN): private messages, updates, modals */
  readonly webApi: boolean;
  /** post to the configured channel (incoming webhook, or chat.postMessage to SLACK_CHANNEL); with the Web API, where it landed */
  post(m: SlackMessage): Promise<PostedMessage | void>;
  /** chat.postMessage to one user (their user id `U…`/`W…`: the app's DM with them) — private delivery */
  postTo(userId: string, m: SlackMessage): Promise<PostedMessage>;
  /** chat.update of a message posted with the Web API */
  update(at: PostedMessage, m: SlackMessage): Promise<void>;
  /** views.open: a modal for the user who just clicked (trigger_id lives 3 s) */
  openView(triggerId: string, view: Record<string, unknown>): Promise<void>;
  /** post, log and swallow any failure; resolves true when Slack accepted it */
  postQuietly(m: SlackMessage): Promise<boolean>;
}

export function createSlack(o: SlackOptions): SlackPort {
  const timeoutMs = o.timeoutMs ?? 8000;
  const enabled = !!(o.webhookUrl || o.botToken);
  /** One Web API call (JSON body, bearer token): the parsed `{ ok: true, ... }` answer or a coded error. */
  async function api(method: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (!o.botToken)
      throw new PipelineError(
        'SLACK.NO_BOT_TOKEN',
        `SLACK_BOT_TOKEN is not set: ${method} needs the Slack Web API`,
      );
    let res: Response;
    try {
      res = await fetch(`${(o.apiUrl ?? 'https://slack.com/api').replace(/\/+$/, '')}/${method}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8', authorization: `Bearer ${o.botToken}` },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new PipelineError(
        'SLACK.UNAVAILABLE',
        `Slack could not be reached: ${(err as Error).name}`,
        true,
      );
    }
    const text = await res.text().catch(() => '');
    if (res.status === 429 || res.status >= 500)
      throw new PipelineError('SLACK.UNAVAILABLE', `Slack answered ${res.status}`, true);
    if (!res.ok)
      throw new PipelineError('SLACK.REJECTED', `Slack answered ${res.status}: ${text.slice(0, 200)}`);
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new PipelineError('SLACK.REJECTED', 'Slack answered with a body that is not JSON');
    }
    if (j.ok !== true) {
      const error = typeof j.error === 'string' ? j.error : 'unknown error';
      throw new PipelineError(
        error === 'ratelimited' ? 'SLACK.UNAVAILABLE' : 'SLACK.REJECTED',
        `${method} failed: ${error}`,
        error === 'ratelimited',
      );
    }
    return j;
  }
  const landed = (j: Record<string, unknown>, fallback: string): PostedMessage => ({
    channel: typeof j.channel === 'string' ? j.channel : fallback,
    ts: typeof j.ts === 'string' ? j.ts : '',
  });

  async function post(m: SlackMessage): Promise<PostedMessage | void> {
    const payload = { text: m.text, blocks: m.blocks, unfurl_links: false, unfurl_media: false };
    if (o.botToken) {
      const channel = o.channel ?? '#deployments';
      return landed(await api('chat.postMessage', { channel, ...payload }), channel);
    }
    let res: Response;
    try {
      if (o.webhookUrl) {
        res = await fetch(o.webhookUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(payload),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } else {
        throw new PipelineError(
          'SLACK.NOT_CONFIGURED',
          'neither SLACK_WEBHOOK_URL nor SLACK_BOT_TOKEN is set',
        );
      }
    } catch (err) {
      if (err instanceof PipelineError) throw err;
      // never include the URL: an incoming-webhook URL is a secret
      throw new PipelineError(
        'SLACK.UNAVAILABLE',
        `Slack could not be reached: ${(err as Error).name}`,
        true,
      );
    }
    const body = await res.text().catch(() => '');
    if (res.status === 429 || res.status >= 500)
      throw new PipelineError('SLACK.UNAVAILABLE', `Slack answered ${res.status}`, true);
    if (!res.ok)
      throw new PipelineError('SLACK.REJECTED', `Slack answered ${res.status}: ${body.slice(0, 200)}`);
  }
  return {
    enabled,
    webApi: !!o.botToken,
    post,
    async postTo(userId, m) {
      return landed(
        await api('chat.postMessage', {
          channel: userId,
          text: m.text,
          blocks: m.blocks,
          unfurl_links: false,
          unfurl_media: false,
        }),
        userId,
      );
    },
    async update(at, m) {
      await api('chat.update', { channel: at.channel, ts: at.ts, text: m.text, blocks: m.blocks ?? [] });
    },
    async openView(triggerId, view) {
      await api('views.open', { trigger_id: triggerId, view });
    },
    async postQuietly(m) {
      if (!enabled) return false;
      try {
        await post(m);
        return true;
      } catch (err) {
        o.log?.warn('slack notification failed (ignored)', { error: messageOf(err) });
        return false;
      }
    },
  };
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const secs = (ms?: number) =>
  ms === undefined
    ? '–'
    : ms < 60_000
      ? `${(ms / 1000).toFixed(1)} s`
      : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;

export interface DeployMessageInput {
  kind: 'started' | 'succeeded' | 'failed' | 'rolled-back' | 'needs-attention';
  environment: string;
  version: string;
  sha: string;
  mergedBy?: string;
  totalMs?: number;
  downtimeMs?: number;
  reason?: string;
  failedStep?: string;
  previousVersion?: string;
  url?: string;
  commitUrl?: string;
  logsUrl?: string;
  statusUrl?: string;
}

const TITLE: Record<DeployMessageInput['kind'], string> = {
  started: ':hourglass_flowing_sand: Deploying',
  succeeded: ':white_check_mark: Deployed',
  failed: ':x: Deploy failed (nothing was stopped)',
  'rolled-back': ':rewind: Deploy rolled back',
  'needs-attention': ':rotating_light: <!channel> ROLLBACK FAILED — needs attention',
};

/** The Block Kit message of a deploy event: version, commit, who merged, duration, outcome. */
export function deployMessage(m: DeployMessageInput): SlackMessage {
  const env = m.environment.toUpperCase();
  const text = `${TITLE[m.kind].replace(/^:[a-z_]+: /, '')}: ${m.version} on ${env}${m.reason ? ` — ${m.reason}` : ''}`;
  const commit = m.commitUrl ? `<${m.commitUrl}|${m.sha.slice(0, 7)}>` : `\`${m.sha.slice(0, 7)}\``;
  const fields = [
    { type: 'mrkdwn', text: `*Version*\n${esc(m.version)}` },
    { type: 'mrkdwn', text: `*Commit*\n${commit}` },
    { type: 'mrkdwn', text: `*Merged by*\n${esc(m.mergedBy ?? 'unknown')}` },
    { type: 'mrkdwn', text: `*Environment*\n${m.url ? `<${m.url}|${env}>` : env}` },
  ];
  if (m.kind !== 'started')
    fields.push({
      type: 'mrkdwn',
      text: `*Duration*\n${secs(m.totalMs)}${m.downtimeMs !== undefined ? ` (downtime ${secs(m.downtimeMs)})` : ''}`,
    });
  if (m.previousVersion) fields.push({ type: 'mrkdwn', text: `*Previous*\n${esc(m.previousVersion)}` });
  const blocks: SlackBlock[] = [
    {
      type: 'header',
      text: {
        type: 'plain_text',
        text: `${TITLE[m.kind].replace(/^:[a-z_]+: /, '').replace(/<!channel> /, '')}: ${m.version} → ${env}`.slice(
          0,
          150,
        ),
      },
    },
    {
      type: 'section',
      text: { type: 'mrkdwn', text: `${TITLE[m.kind]} *${esc(m.version)}* on *${env}*` },
      fields,
    },
  ];
  if (m.reason)
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: `*Reason*${m.failedStep ? ` (step \`${m.failedStep}\`)` : ''}\n\`\`\`${esc(m.reason).slice(0, 2500)}\`\`\``,
      },
    });
  const links = [
    m.logsUrl ? `<${m.logsUrl}|logs>` : '',
    m.statusUrl ? `<${m.statusUrl}|deploy status>` : '',
  ].filter(Boolean);
  if (links.length) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: links.join(' · ') }] });
  return { text, blocks };
}
