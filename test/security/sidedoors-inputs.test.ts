/**
 * Smaller doors (issue #15, item 8), tried as an attacker would:
 *
 * - Anonymous routes (the approval page, Slack interactivity) answered a configuration problem with
 *   its text — which settings are missing, how storage is reached. An anonymous caller now gets a
 *   generic answer with a code; the detail goes to the function's log.
 * - psql `\set` / `-v` values of the refresh (database, UAT URL, kept logins, password hash) were not
 *   checked for control characters: a newline ends the `\set` line and starts a psql meta-command
 *   (`\! …` runs a shell command on the VM). Any C0 control character or DEL is refused with
 *   SQL.CONTROL_CHARACTER before anything runs.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { showApproval, decideApproval } from '../../functions/approvals';
import { slackInteractions } from '../../functions/slackInteractions';
import { buildRefreshCommand } from '../../shared/adapters/sql-scripts';
import { errorCode } from '../../shared/domain/errors';

const saved = { ...process.env };
afterEach(() => {
  process.env = { ...saved };
});

function ctx(logged: string[]): InvocationContext {
  return new InvocationContext({
    functionName: 'anon',
    logHandler: (_level, ...args) => logged.push(args.map(String).join(' ')),
  });
}

/** settings that load, but no storage for the approval store (a half-configured deployment) */
function halfConfigured(): void {
  process.env.PIPELINE_RUNTIME = 'local';
  process.env.APPROVAL_SIGNING_KEY = 'k'.repeat(48);
  delete process.env.BACKUP_STORAGE_CONNECTION;
  delete process.env.BACKUP_STORAGE_ACCOUNT_URL;
}

describe('anonymous routes never show configuration texts', () => {
  const TOKEN = 'v1.eyJ4IjoxfQ.c2ln';

  it.each([
    [
      'GET page',
      () =>
        showApproval(
          new HttpRequest({
            method: 'GET',
            url: `http://127.0.0.1/api/approvals/${TOKEN}`,
            params: { token: TOKEN },
          }),
          ctx(logged),
        ),
    ],
    [
      'GET json',
      () =>
        showApproval(
          new HttpRequest({
            method: 'GET',
            url: `http://127.0.0.1/api/approvals/${TOKEN}`,
            params: { token: TOKEN },
            headers: { accept: 'application/json' },
          }),
          ctx(logged),
        ),
    ],
    [
      'POST decision',
      () =>
        decideApproval(
          new HttpRequest({
            method: 'POST',
            url: `http://127.0.0.1/api/approvals/${TOKEN}`,
            params: { token: TOKEN },
            headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://127.0.0.1' },
            body: { string: 'decision=approve' },
          }),
          ctx(logged),
        ),
    ],
  ])('approval link (%s): a generic 503 with a code; the detail is in the log', async (_name, call) => {
    halfConfigured();
    logged.length = 0;
    const res = await call();
    expect(res.status).toBe(503);
    const text = JSON.stringify(res.jsonBody ?? res.body ?? '');
    expect(text).toMatch(/APPROVAL\.NOT_CONFIGURED/);
    expect(text).not.toMatch(/BACKUP_STORAGE|STORAGE_MISSING|ACCOUNT_URL/);
    expect(logged.join('\n')).toMatch(/BACKUP_STORAGE_CONNECTION|STORAGE_MISSING/);
  });
  const logged: string[] = [];

  it('Slack interactivity: a malformed setting gives a generic 503, not the configuration text', async () => {
    process.env.PIPELINE_RUNTIME = 'local';
    process.env.SLACK_SIGNING_SECRET = 's'.repeat(32);
    process.env.LOCAL_HOST_PORT = 'not-a-port-9f3c';
    const log: string[] = [];
    const res = await slackInteractions(
      new HttpRequest({
        method: 'POST',
        url: 'http://127.0.0.1/api/slack/interactions',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: { string: 'payload=%7B%7D' },
      }),
      ctx(log),
    );
    expect(res.status).toBe(503);
    const text = String(res.body ?? '') + JSON.stringify(res.jsonBody ?? '');
    expect(text).toMatch(/CONFIG/);
    expect(text).not.toMatch(/LOCAL_HOST_PORT|not-a-port-9f3c|Invalid configuration/);
    expect(log.join('\n')).toMatch(/LOCAL_HOST_PORT/);
  });
});

describe('psql variables refuse control characters', () => {
  const refused = (p: Parameters<typeof buildRefreshCommand>[0]) => {
    try {
      buildRefreshCommand(p);
    } catch (err) {
      return errorCode(err);
    }
    return 'accepted';
  };
  const base = { database: 'odoo_uat', sqlDir: '/srv/sql' };

  it.each([
    [
      'a newline in the UAT URL (new URL() drops it silently)',
      { ...base, uatUrl: 'https://uat.example.com/\n\\! touch /tmp/pwned' },
    ],
    ['a carriage return in the UAT URL', { ...base, uatUrl: 'https://uat.example.com/\r\\! id' }],
    ['a tab in the UAT URL', { ...base, uatUrl: 'https://uat.example.com/\tx' }],
    ['NUL in the database name', { ...base, database: 'odoo_uat\u0000x' }],
    ['ESC in the database name', { ...base, database: 'odoo\u001b[2Juat' }],
    ['a vertical tab in a kept login', { ...base, keepLogins: ['admin', 'ops\u000bx'] }],
    ['NUL in a kept login', { ...base, keepLogins: ['ad\u0000min'] }],
    ['DEL in a kept login', { ...base, keepLogins: ['ad\u007fmin'] }],
    ['a bell in a kept login', { ...base, keepLogins: ['\u0007admin'] }],
  ])('%s → SQL.CONTROL_CHARACTER', (_name, p) => {
    expect(refused(p)).toBe('SQL.CONTROL_CHARACTER');
  });

  it('the error names the parameter and the character, not the value', () => {
    let message = '';
    try {
      buildRefreshCommand({ ...base, uatUrl: 'https://uat.example.com/\n\\! secret-thing' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/uatUrl/);
    expect(message).toMatch(/U\+000A/);
    expect(message).not.toContain('secret-thing');
  });

  it('ordinary values still build the command (printable UTF-8 included)', () => {
    expect(
      refused({
        ...base,
        uatUrl: 'https://uat.example.com/odoo',
        keepLogins: ['admin', 'jérôme@example.com'],
      }),
    ).toBe('accepted');
  });
});
