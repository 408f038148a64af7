import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  ConfigError,
  loadConfig,
  registerConfigSecrets,
  SETTINGS,
  unsetOptionalSettings,
} from '../../shared/config';
import { exampleSettings, renderReadme } from '../../local/settings-doc';

const root = path.resolve(__dirname, '..', '..');
const problemsOf = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  return [];
};

describe('configuration schema', () => {
  it('starts on defaults locally with nothing set', () => {
    const c = loadConfig({});
    expect(c.PIPELINE_RUNTIME).toBe('local');
    expect(c.COVERAGE_MIN).toBe(80);
    expect(c.IMAGE_KEEP_COUNT).toBe(5);
    expect(c.FOUR_EYES).toBe(true);
    expect(c.HEALTH_KEY_URLS).toEqual(['/web/login']);
  });

  it('parses typed values', () => {
    const c = loadConfig({
      COVERAGE_MIN: '85.5',
      FOUR_EYES: 'no',
      APPROVERS: ' alice:slack=U0123ABCD, bob:entra=bob@example.com ,,',
      UAT_SSH_PORT: '2222',
      APPROVAL_TIMEOUT_HOURS: '0.01',
      APPROVAL_REMINDER_MINUTES: '0.25',
      ODOOSH_WAIT_MINUTES: '0.5',
    });
    expect(c.COVERAGE_MIN).toBe(85.5);
    expect(c.FOUR_EYES).toBe(false);
    expect(c.APPROVERS).toEqual([
      { id: 'alice', name: 'alice', slack: 'U0123ABCD' },
      { id: 'bob', name: 'bob', entra: 'bob@example.com' },
    ]);
    expect(c.UAT_SSH_PORT).toBe(2222);
    // short approval windows (the real-clock tests of deployProd's gate use them): 36 s, reminder 15 s before
    expect(c.APPROVAL_TIMEOUT_HOURS).toBe(0.01);
    expect(c.APPROVAL_REMINDER_MINUTES).toBe(0.25);
    expect(c.ODOOSH_WAIT_MINUTES).toBe(0.5);
    expect(loadConfig({}).ODOOSH_POLL_SECONDS).toBe(30);
  });

  it.each([
    ['COVERAGE_MIN', '120', 'a number 0-100'],
    ['COVERAGE_MIN', 'eighty', 'a number 0-100'],
    ['UAT_SSH_PORT', '0', 'an integer 1-65535'],
    ['APPROVAL_REMINDER_MINUTES', '-0.5', 'a number 0-10080'],
    ['FOUR_EYES', 'maybe', 'true | false'],
    ['PUBLIC_BASE_URL', 'not a url', 'an absolute http(s) URL'],
    ['GITHUB_REPOSITORY', 'just-a-name', 'owner/name'],
    ['UAT_SSH_HOST_KEY', 'ssh-ed25519 AAAA', 'SHA256:<base64>'],
    ['LOG_LEVEL', 'loud', 'debug | info | warn | error'],
    ['BACKUP_CONTAINER', 'Bad_Name', 'a container name'],
    ['ODOOSH_POLL_SECONDS', '0', 'an integer 1-600'],
    ['ODOOSH_POLL_SECONDS', '1.5', 'an integer 1-600'],
    ['ODOOSH_WAIT_MINUTES', '0.05', 'a number 0.1-1440'],
  ])('a malformed %s (%s) yields one message naming the key and form', (key, value, form) => {
    const problems = problemsOf({ [key]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(key);
    expect(problems[0]).toContain(form);
  });

  it('never echoes a malformed secret', () => {
    const problems = problemsOf({ GITHUB_WEBHOOK_SECRET: 'short-secret' });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('GITHUB_WEBHOOK_SECRET');
    expect(problems[0]).not.toContain('short-secret');
  });

  it('in Azure, names every missing required setting at once', () => {
    const problems = problemsOf({ PIPELINE_RUNTIME: 'azure' });
    const required = Object.entries(SETTINGS)
      .filter(([, s]) => 'requiredInAzure' in s && s.requiredInAzure)
      .map(([k]) => k);
    expect(required.length).toBeGreaterThan(5);
    for (const key of required) expect(problems.some((p) => p.startsWith(`${key} is missing`))).toBe(true);
  });

  it('in Azure, refuses to start without GitHub credentials (a token or the complete GitHub App)', () => {
    const github = (env: Record<string, string>) =>
      problemsOf({ PIPELINE_RUNTIME: 'azure', ...env }).filter((p) => /GITHUB_TOKEN|GITHUB_APP/.test(p));
    expect(github({})).toEqual([expect.stringMatching(/^GITHUB_TOKEN or the GitHub App .* is missing/)]);
    expect(github({ GITHUB_TOKEN: 'ghs_0123456789abcdef' })).toEqual([]);
    const key = '-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----';
    expect(
      github({ GITHUB_APP_ID: '12', GITHUB_APP_INSTALLATION_ID: '34', GITHUB_APP_PRIVATE_KEY: key }),
    ).toEqual([]);
    // an incomplete App is not credentials either: named once, for what is missing
    expect(github({ GITHUB_APP_ID: '12', GITHUB_APP_INSTALLATION_ID: '34' })).toEqual([
      expect.stringContaining('GITHUB_APP_PRIVATE_KEY'),
    ]);
    // an unresolved Key Vault reference for the token is reported as such, not as a missing credential
    expect(
      github({
        GITHUB_TOKEN: '@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/github-token)',
      }),
    ).toEqual([expect.stringContaining('GITHUB_TOKEN is an unresolved Key Vault reference')]);
    // locally the intake may run without GitHub (it says what is disabled)
    expect(problemsOf({}).filter((p) => /GITHUB_TOKEN/.test(p))).toEqual([]);
  });

  it('reports an unresolved Key Vault reference as such', () => {
    const problems = problemsOf({
      GITHUB_WEBHOOK_SECRET: '@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/x)',
    });
    expect(problems).toEqual([
      expect.stringContaining('GITHUB_WEBHOOK_SECRET is an unresolved Key Vault reference'),
    ]);
  });

  it('checks settings that only make sense together', () => {
    expect(problemsOf({ GITHUB_APP_ID: '12' })[0]).toContain('GITHUB_APP_PRIVATE_KEY');
    expect(problemsOf({ PROD_DISK_SNAPSHOT: 'true' })[0]).toContain('PROD_VM_RESOURCE_ID');
  });

  it('lists unset optional settings with what they disable', () => {
    const unset = unsetOptionalSettings({});
    expect(unset.find((u) => u.key === 'SLACK_WEBHOOK_URL')?.disables).toMatch(/Slack/);
    expect(
      unsetOptionalSettings({ SLACK_WEBHOOK_URL: 'https://hooks.example/x' }).find(
        (u) => u.key === 'SLACK_WEBHOOK_URL',
      ),
    ).toBeUndefined();
  });

  it('registers secrets for redaction', () => {
    const seen: string[] = [];
    registerConfigSecrets(loadConfig({ GITHUB_WEBHOOK_SECRET: 'a-very-long-webhook-secret' }), (v) =>
      seen.push(v),
    );
    expect(seen).toEqual(['a-very-long-webhook-secret']);
  });
});

describe('settings documentation stays in step with the schema', () => {
  it('local.settings.example.json lists exactly the schema settings', () => {
    const committed = JSON.parse(readFileSync(path.join(root, 'local.settings.example.json'), 'utf8'));
    expect(committed).toEqual(exampleSettings());
    for (const key of Object.keys(SETTINGS)) expect(committed.Values).toHaveProperty(key);
  });

  it("README's configuration table is the generated one", () => {
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    expect(renderReadme(readme)).toBe(readme);
    for (const key of Object.keys(SETTINGS)) expect(readme).toContain(`\`${key}\``);
  });

  it('no secret has a default value in the example', () => {
    const values = exampleSettings().Values as Record<string, string>;
    for (const [key, spec] of Object.entries(SETTINGS))
      if ('secret' in spec && spec.secret) expect(values[key]).toBe('');
  });
});
