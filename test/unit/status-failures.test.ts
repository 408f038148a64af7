/**
 * Failure texts on the status page (issue #20, round 4). A deploy, PROD deploy or refresh fails with
 * whatever the tools printed: connection strings, SAS signatures, passwords, tokens, sandbox paths.
 * Tried as an operator reading `/api/status` would see them: none of those secrets reaches the
 * document, wherever the failure is shown (last deploy, last refresh, the DOWN headline, a crash), and
 * the rest of the text stays readable.
 */
import {
  assembleStatus,
  summarizeFailure,
  type InstanceInfo,
  type StatusInputs,
} from '../../shared/domain/status-view';

const NOW = new Date('2026-12-06T12:00:00Z');
const ACCOUNT_KEY = 'Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmE9PQ==';
const SAS_SIG = 'sVpW%2B3kq8L9m0zXy1AbCdEfGhIjKlMnOpQrStUvWxYz%3D';
const PASSWORD = 'Hunter2-Prod!';
const GH_TOKEN = 'ghs_16C7e42F292c6912E7710c838347Ae178B4a';
const SECRETS = [ACCOUNT_KEY, SAS_SIG, PASSWORD, GH_TOKEN];
const LEAKY =
  `[DEPLOY.MIGRATION_FAILED] pg_dump failed: Host=10.0.0.4;Username=odoo;Password=${PASSWORD};Database=odoo ` +
  `AccountKey=${ACCOUNT_KEY};EndpointSuffix=core.windows.net sig=${SAS_SIG}&spr=https token=${GH_TOKEN}`;

const ok = <T>(value: T) => ({ ok: true as const, value });
function inst(p: Partial<InstanceInfo> & { name: string; instanceId: string }): InstanceInfo {
  return {
    runtimeStatus: 'Completed',
    createdTime: '2026-12-06T10:00:00Z',
    lastUpdatedTime: '2026-12-06T10:05:00Z',
    customStatus: null,
    output: null,
    ...p,
  };
}
function status(instances: InstanceInfo[]) {
  const inputs: StatusInputs = {
    now: NOW,
    environments: ['uat', 'prod'],
    ledger: { uat: ok({ history: [] }), prod: ok({ history: [] }) },
    instances: ok(instances),
    lanes: {},
    backups: { uat: ok([]), prod: ok([]) },
  };
  return assembleStatus(inputs);
}
const expectNoSecret = (doc: unknown) => {
  const json = JSON.stringify(doc);
  for (const s of SECRETS) expect(json).not.toContain(s);
  expect(json).toContain('<redacted>');
};

describe('a secret quoted by a failure never reaches the status document', () => {
  test('the last UAT deploy failed (its reason quotes the secrets)', () => {
    const doc = status([
      inst({
        name: 'deployUat',
        instanceId: 'deploy-uat-1.3.0-cccccccccccc',
        output: {
          outcome: 'Failed',
          version: '1.3.0',
          environment: 'uat',
          reason: LEAKY,
          failedStep: 'backup',
        },
      }),
    ]);
    expectNoSecret(doc);
    const uat = doc.environments.find((e) => e.name === 'uat')!;
    expect(uat.lastDeploy.ok && uat.lastDeploy.value?.code).toBe('DEPLOY.MIGRATION_FAILED');
    expect(uat.lastDeploy.ok && uat.lastDeploy.value?.failure).toMatch(
      /^pg_dump failed: .*Password=<redacted>/,
    );
    // the attention line repeats the failure: also without the secrets
    expect(doc.attention.map((a) => a.detail).join('\n')).toMatch(/while backing up.*Password=<redacted>/);
  });

  test("a PROD deploy failed (its failure quotes the secrets; the reason is the requester's words)", () => {
    const doc = status([
      inst({
        name: 'deployProd',
        instanceId: 'deploy-prod-1.3.0-cccccccccccc',
        output: { outcome: 'Failed', version: '1.3.0', failure: LEAKY, reason: 'monthly release' },
      }),
    ]);
    expectNoSecret(doc);
    const prod = doc.environments.find((e) => e.name === 'prod')!;
    expect(prod.lastDeploy.ok && prod.lastDeploy.value).toMatchObject({ requestReason: 'monthly release' });
  });

  test('a UAT deploy whose rollback failed leaves UAT DOWN: the headline names the cause without the secrets', () => {
    const doc = status([
      inst({
        name: 'deployUat',
        instanceId: 'deploy-uat-1.3.0-cccccccccccc',
        output: {
          outcome: 'NeedsAttention',
          version: '1.3.0',
          environment: 'uat',
          reason: LEAKY,
          failedStep: 'migrate',
        },
      }),
    ]);
    expectNoSecret(doc);
    const uat = doc.environments.find((e) => e.name === 'uat')!;
    expect(uat.health.ok && uat.health.value.state).toBe('down');
    expect(uat.health.ok && uat.health.value.headline).toMatch(
      /^UAT is DOWN: .*while updating the database.*Password=<redacted>/,
    );
  });

  test('a refresh failed, and a refresh that crashed with the text as its output', () => {
    expectNoSecret(
      status([
        inst({
          name: 'refreshUat',
          instanceId: 'refresh-uat-1',
          output: { outcome: 'Failed', reason: LEAKY },
        }),
      ]),
    );
    expectNoSecret(
      status([
        inst({ name: 'refreshUat', instanceId: 'refresh-uat-2', runtimeStatus: 'Failed', output: LEAKY }),
      ]),
    );
    expectNoSecret(
      status([
        inst({
          name: 'refreshUat',
          instanceId: 'refresh-uat-3',
          runtimeStatus: 'Failed',
          customStatus: { error: LEAKY },
        }),
      ]),
    );
  });

  test('a deploy orchestration that crashed (its output is the error text)', () => {
    const doc = status([
      inst({
        name: 'deployUat',
        instanceId: 'deploy-uat-1.3.0-cccccccccccc',
        runtimeStatus: 'Failed',
        customStatus: { step: 'migrate', environment: 'uat', version: '1.3.0' },
        output: LEAKY,
      }),
    ]);
    expectNoSecret(doc);
    const uat = doc.environments.find((e) => e.name === 'uat')!;
    expect(uat.lastDeploy.ok && uat.lastDeploy.value?.outcome).toBe('Failed');
    // crashed inside the stopped steps: nobody brought UAT back
    expect(uat.health.ok && uat.health.value.state).toBe('down');
  });
});

describe('how a failure text is summarized', () => {
  test('each kind of secret is replaced by a marker next to its name, in any case', () => {
    for (const name of [
      'AccountKey',
      'SharedAccessSignature',
      'sig',
      'code',
      'key',
      'password',
      'token',
      'PASSWORD',
      'Token',
    ])
      expect(summarizeFailure(`failed with ${name}=s3cr3t-v@lue;next=1`)!.summary).toBe(
        `failed with ${name}=<redacted>;next=1`,
      );
    expect(summarizeFailure('a key=k1&sig=s2 b')!.summary).toBe('a key=<redacted>&sig=<redacted> b');
    expect(summarizeFailure('password=p1\nsecond line')!.detail).toBe('password=<redacted>\nsecond line');
  });

  test('URLs are hidden; local paths keep only the file name', () => {
    expect(summarizeFailure('GET http://10.0.0.4:8069/web/health?token=x returned 502')!.summary).toBe(
      'GET <url> returned 502',
    );
    expect(summarizeFailure('see /tmp/sandbox-1/ops/migrate.log for details')!.summary).toBe(
      'see …/migrate.log for details',
    );
    expect(summarizeFailure('cannot write "/var/lib/odoo/filestore/" now')!.summary).toBe(
      'cannot write "…" now',
    );
    expect(summarizeFailure('(/srv/a/b.txt) and file=/srv/x/y/z.log')!.summary).toBe(
      '(…/b.txt) and file=…/z.log',
    );
    // one folder deep says something (a system file): kept
    expect(summarizeFailure('open /etc/passwd failed')!.summary).toBe('open /etc/passwd failed');
  });

  test('the code is kept apart; the summary is the first line, at most 160 characters, cut at a word', () => {
    expect(summarizeFailure('[HEALTH.FAILED] /web/health 502')).toEqual({
      summary: '/web/health 502',
      code: 'HEALTH.FAILED',
    });
    const long = `${'word '.repeat(40)}end`;
    const s = summarizeFailure(long)!;
    expect(s.summary.length).toBeLessThanOrEqual(160);
    expect(s.summary.endsWith('word…')).toBe(true);
    expect(s.detail).toBe(long);
    expect(summarizeFailure('x'.repeat(160))).toEqual({ summary: 'x'.repeat(160) });
    expect(summarizeFailure('first\nsecond')).toEqual({ summary: 'first', detail: 'first\nsecond' });
    expect(summarizeFailure('  a   lot\tof   space  ')).toEqual({ summary: 'a lot of space' });
    expect(summarizeFailure('[X.Y]')).toEqual({ summary: 'X.Y', detail: '', code: 'X.Y' });
    expect(summarizeFailure('no code [X.Y] inside [A.B] twice')).toMatchObject({
      summary: 'no code inside twice',
      code: 'X.Y',
    });
    expect(summarizeFailure('')).toBeUndefined();
    expect(summarizeFailure('  \n ')).toBeUndefined();
    expect(summarizeFailure(undefined)).toBeUndefined();
    expect(summarizeFailure('y'.repeat(5000))!.detail).toHaveLength(4000);
  });
});
