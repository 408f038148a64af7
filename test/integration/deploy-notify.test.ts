/**
 * Slack and GitHub Deployments adapters against local HTTP servers speaking those APIs (real fetch /
 * real Octokit); the combined notifier never throws.
 */
import { createSlack, deployMessage } from '../../shared/adapters/slack';
import { createGitHubDeployments } from '../../shared/adapters/github-deployments';
import { createNotifier } from '../../shared/adapters/deploy-notify';
import { createLogger } from '../../shared/log';
import { startFakeSlack, type FakeSlack } from '../support/fake-slack';
import { startFakeGitHubDeployments, type FakeGitHubDeployments } from '../support/fake-github-deployments';

const SHA = 'c'.repeat(40);
const quiet = createLogger({ level: 'error', sink: () => undefined });

describe('deploy notifications', () => {
  let slack: FakeSlack;
  let gh: FakeGitHubDeployments;
  beforeAll(async () => {
    slack = await startFakeSlack();
    gh = await startFakeGitHubDeployments();
  });
  afterAll(async () => {
    await slack.stop();
    await gh.stop();
  });
  beforeEach(() => {
    slack.posts.length = 0;
    slack.failWith = undefined;
    slack.apiError = undefined;
    gh.failWith = undefined;
  });

  it('posts a Block Kit message through an incoming webhook with unfurling off', async () => {
    const s = createSlack({ webhookUrl: slack.webhookUrl });
    await s.post(
      deployMessage({
        kind: 'succeeded',
        environment: 'uat',
        version: '1.1.0',
        sha: SHA,
        mergedBy: 'alice',
        totalMs: 65_000,
        downtimeMs: 4_000,
        commitUrl: `https://github.com/acme/odoo-mta/commit/${SHA}`,
      }),
    );
    expect(slack.posts).toHaveLength(1);
    const body = slack.posts[0].body;
    expect(body).toMatchObject({ unfurl_links: false, unfurl_media: false });
    const text = JSON.stringify(body.blocks);
    expect(text).toContain('1.1.0');
    expect(text).toContain('alice');
    expect(text).toContain('ccccccc');
    expect(text).toContain('1 min 5 s');
    expect(body.text).toMatch(/Deployed: 1.1.0 on UAT/);
  });

  it('posts through chat.postMessage with the bot token and channel; API errors are coded', async () => {
    const s = createSlack({ botToken: slack.token, channel: '#deploys', apiUrl: slack.apiUrl });
    await s.post(
      deployMessage({
        kind: 'rolled-back',
        environment: 'uat',
        version: '1.2.0',
        sha: SHA,
        reason: '[DEPLOY.MIGRATION_FAILED] boom',
        failedStep: 'migrate',
        logsUrl: 'https://logs.example/x',
      }),
    );
    expect(slack.posts[0]).toMatchObject({ via: 'api', body: { channel: '#deploys' } });
    expect(JSON.stringify(slack.posts[0].body.blocks)).toContain('MIGRATION_FAILED');
    slack.apiError = 'channel_not_found';
    await expect(s.post({ text: 'x' })).rejects.toThrow(/\[SLACK.REJECTED\].*channel_not_found/);
    await expect(
      createSlack({ botToken: 'xoxb-wrong', apiUrl: slack.apiUrl }).post({ text: 'x' }),
    ).rejects.toThrow(/invalid_auth/);
  });

  it('never throws from postQuietly and never leaks the webhook URL', async () => {
    slack.failWith = 503;
    const lines: string[] = [];
    const s = createSlack({
      webhookUrl: slack.webhookUrl,
      log: createLogger({ level: 'debug', sink: (l) => void lines.push(l) }),
    });
    await expect(s.post({ text: 'x' })).rejects.toThrow(/\[SLACK.UNAVAILABLE\]/);
    await expect(s.postQuietly({ text: 'x' })).resolves.toBe(false);
    const dead = createSlack({ webhookUrl: 'http://127.0.0.1:1/hooks/secret-path' });
    await expect(dead.post({ text: 'x' })).rejects.not.toThrow(/secret-path/);
    expect(lines.join('\n')).not.toContain(slack.webhookUrl);
    expect(createSlack({}).enabled).toBe(false);
  });

  it('creates a GitHub deployment and its statuses; compare lists changed files', async () => {
    const api = createGitHubDeployments({ repository: gh.repository, baseUrl: gh.url, token: gh.token });
    const id = await api.create({ sha: SHA, environment: 'uat', version: '1.1.0' });
    await api.status(id, { state: 'in_progress', description: 'deploying' });
    await api.status(id, {
      state: 'success',
      description: 'x'.repeat(300),
      environmentUrl: 'https://uat.example',
    });
    const d = gh.deployments.find((x) => x.id === id)!;
    expect(d).toMatchObject({ ref: SHA, environment: 'uat', production_environment: false });
    expect(d.statuses.map((s) => s.state)).toEqual(['in_progress', 'success']);
    expect(d.statuses[1].environment_url).toBe('https://uat.example');
    gh.compares.set(`${'a'.repeat(40)}...${SHA}`, ['addons/sale_x/models/a.py', 'README.md']);
    await expect(api.changedFiles('a'.repeat(40), SHA)).resolves.toEqual([
      'addons/sale_x/models/a.py',
      'README.md',
    ]);
    await expect(api.changedFiles('b'.repeat(40), SHA)).rejects.toThrow(/\[GITHUB.NOT_FOUND\]/);
    // the number of commits the approval page shows: GitHub's total_commits, unknown when it says none
    await expect(api.commitCount('a'.repeat(40), SHA)).resolves.toBeUndefined();
    gh.commitCounts = new Map([[`${'a'.repeat(40)}...${SHA}`, 7]]);
    await expect(api.commitCount('a'.repeat(40), SHA)).resolves.toBe(7);
    await expect(api.commitCount('b'.repeat(40), SHA)).rejects.toThrow(/\[GITHUB.NOT_FOUND\]/);
    const wrong = createGitHubDeployments({ repository: gh.repository, baseUrl: gh.url, token: 'nope' });
    await expect(wrong.create({ sha: SHA, environment: 'uat', version: '1' })).rejects.toThrow(
      /\[GITHUB.AUTH_FAILED\]/,
    );
  });

  it('the notifier drives GitHub + Slack through a deploy and swallows their outages', async () => {
    const n = createNotifier({
      github: createGitHubDeployments({ repository: gh.repository, baseUrl: gh.url, token: gh.token }),
      slack: createSlack({ webhookUrl: slack.webhookUrl }),
      publicBaseUrl: 'https://fn.example',
      log: quiet,
    });
    const base = {
      environment: 'uat',
      version: '1.3.0',
      sha: SHA,
      instanceId: 'deploy-uat-1.3.0-cccccccccccc',
      url: 'https://uat.example',
      mergedBy: 'bob',
    };
    const started = await n.notify({ kind: 'started', ...base });
    expect(started).toMatchObject({ github: true, slack: true });
    const id = started.githubDeploymentId!;
    expect(
      await n.notify({ kind: 'succeeded', ...base, githubDeploymentId: id, totalMs: 1000 }),
    ).toMatchObject({ github: true, slack: true });
    const d = gh.deployments.find((x) => x.id === id)!;
    expect(d.statuses.map((s) => s.state)).toEqual(['in_progress', 'success']);
    expect(d.statuses[1].environment_url).toBe('https://uat.example');
    expect(slack.posts).toHaveLength(2);
    // a rollback alert links the saved logs (the API's logs route), on GitHub and in Slack
    await n.notify({
      kind: 'rolled-back',
      ...base,
      githubDeploymentId: id,
      reason: '[DEPLOY.MIGRATION_FAILED] boom',
      failedStep: 'migrate',
      logs: ['backups/uat/x/logs/migrate.log'],
    });
    const logsUrl = 'https://fn.example/api/deployments/deploy-uat-1.3.0-cccccccccccc/logs';
    expect(gh.deployments.find((x) => x.id === id)!.statuses.at(-1)).toMatchObject({
      state: 'failure',
      log_url: logsUrl,
    });
    expect(JSON.stringify(slack.posts.at(-1))).toContain(logsUrl);
    gh.failWith = 500;
    slack.failWith = 500;
    await expect(n.notify({ kind: 'failed', ...base, githubDeploymentId: id, reason: 'x' })).resolves.toEqual(
      { github: false, slack: false },
    );
  });
});
