/**
 * Slack notifications: an incoming webhook (SLACK_WEBHOOK_URL) or the Web API `chat.postMessage`
 * (SLACK_BOT_TOKEN + SLACK_CHANNEL). Block Kit messages, link unfurling off (Slack's servers fetch every
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

export interface SlackPort {
  readonly enabled: boolean;
  post(m: SlackMessage): Promise<void>;
  /** post, log and swallow any failure; resolves true when Slack accepted it */
  postQuietly(m: SlackMessage): Promise<boolean>;
}

export function createSlack(o: SlackOptions): SlackPort {
  const timeoutMs = o.timeoutMs ?? 8000;
  const enabled = !!(o.webhookUrl || o.botToken);
  async function post(m: SlackMessage): Promise<void> {
    const payload = { text: m.text, blocks: m.blocks, unfurl_links: false, unfurl_media: false };
    let res: Response;
    try {
      if (o.botToken) {
        res = await fetch(`${(o.apiUrl ?? 'https://slack.com/api').replace(/\/+$/, '')}/chat.postMessage`, {
          method: 'POST',
          headers: { 'content-type': 'application/json; charset=utf-8', authorization: `Bearer ${o.botToken}` },
          body: JSON.stringify({ channel: o.channel ?? '#deployments', ...payload }),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } else if (o.webhookUrl) {
        res = await fetch(o.webhookUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload), signal: AbortSignal.timeout(timeoutMs) });
      } else {
        throw new PipelineError('SLACK.NOT_CONFIGURED', 'neither SLACK_WEBHOOK_URL nor SLACK_BOT_TOKEN is set');
      }
    } catch (err) {
      if (err instanceof PipelineError) throw err;
      // never include the URL: an incoming-webhook URL is a secret
      throw new PipelineError('SLACK.UNAVAILABLE', `Slack could not be reached: ${(err as Error).name}`, true);
    }
    const body = await res.text().catch(() => '');
    if (res.status === 429 || res.status >= 500) throw new PipelineError('SLACK.UNAVAILABLE', `Slack answered ${res.status}`, true);
    if (!res.ok) throw new PipelineError('SLACK.REJECTED', `Slack answered ${res.status}: ${body.slice(0, 200)}`);
    if (o.botToken) {
      // the Web API answers 200 with { ok: false, error } on failure
      let j: { ok?: boolean; error?: string } = {};
      try {
        j = JSON.parse(body) as typeof j;
      } catch {
        throw new PipelineError('SLACK.REJECTED', 'Slack answered with a body that is not JSON');
      }
      if (!j.ok) throw new PipelineError('SLACK.REJECTED', `chat.postMessage failed: ${j.error ?? 'unknown error'}`);
    }
  }
  return {
    enabled,
    post,
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
const secs = (ms?: number) => (ms === undefined ? '–' : ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`);

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
  if (m.kind !== 'started') fields.push({ type: 'mrkdwn', text: `*Duration*\n${secs(m.totalMs)}${m.downtimeMs !== undefined ? ` (downtime ${secs(m.downtimeMs)})` : ''}` });
  if (m.previousVersion) fields.push({ type: 'mrkdwn', text: `*Previous*\n${esc(m.previousVersion)}` });
  const blocks: SlackBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: `${TITLE[m.kind].replace(/^:[a-z_]+: /, '').replace(/<!channel> /, '')}: ${m.version} → ${env}`.slice(0, 150) } },
    { type: 'section', text: { type: 'mrkdwn', text: `${TITLE[m.kind]} *${esc(m.version)}* on *${env}*` }, fields },
  ];
  if (m.reason) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `*Reason*${m.failedStep ? ` (step \`${m.failedStep}\`)` : ''}\n\`\`\`${esc(m.reason).slice(0, 2500)}\`\`\`` } });
  const links = [m.logsUrl ? `<${m.logsUrl}|logs>` : '', m.statusUrl ? `<${m.statusUrl}|deploy status>` : ''].filter(Boolean);
  if (links.length) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: links.join(' · ') }] });
  return { text, blocks };
}
