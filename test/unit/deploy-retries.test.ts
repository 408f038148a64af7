/**
 * Which deploy steps are tried again after a transient failure, and which never are (issue #20).
 * A retry of the wrong step is a real incident: a migration run twice on a half-migrated database,
 * a health check retried until a broken release looks healthy, a Slack message sent twice. These tests
 * state the rule for every step with its reason, and the error rules the retry decision is built on.
 */
import {
  DEPLOY_STEPS,
  DOWNTIME_STEPS,
  STEP_RETRY,
  codeOf,
  modulesToUpdate,
  outcomeOfFailure,
  reasonOf,
  repositoryOf,
  shouldRetry,
  tagOf,
  validateDeployInput,
  type DeployStep,
} from '../../shared/domain/deploy-plan';
import { PipelineError, errorCode, isRetryable, messageOf } from '../../shared/domain/errors';

/** a transient failure as it reaches the orchestrator: a plain Error whose message carries the code */
const transient = new Error(
  'Activity function deployStep failed: [SSH.CONNECT] connect ECONNREFUSED 10.0.0.4:22',
);

describe('retry policy of each UAT deploy step', () => {
  const retried: Array<[DeployStep, string]> = [
    ['prepare', 'reads settings and the running release: no change made, safe to repeat'],
    ['preflight', 'only looks at the VM (reachable, disk, image): safe to repeat'],
    ['wait-image', 'polls the registry: safe to repeat'],
    ['backup', 'writes a new backup blob each time: a dropped connection is worth another try'],
    ['pull', 'pulling an image is idempotent'],
    ['stop', 'stopping a stopped service is a no-op'],
    ['start', 'starting a started service is a no-op'],
    ['record', 'records the release in the ledger: a dropped connection is worth another try'],
    ['rollback', 'restoring the backup taken before the change is what must succeed'],
  ];
  const never: Array<[DeployStep, string]> = [
    ['migrate', 'a migration is not idempotent and fails deterministically: rolled back, never run twice'],
    [
      'health',
      'the health check waits within its own timeout; retrying the verdict would only delay the rollback of a broken release',
    ],
    ['notify', 'best effort: a second attempt could post the same Slack / GitHub notice twice'],
    ['retention', 'best effort: a failure is logged, the deploy stands, the next deploy prunes again'],
    ['done', 'nothing to do'],
  ];

  test.each(retried)('%s is retried after a transient failure (%s)', (step) => {
    expect(STEP_RETRY[step].retry).toBe(true);
    expect(shouldRetry(step, transient)).toBe(true);
  });

  test.each(never)('%s is never retried, even after a transient failure (%s)', (step) => {
    expect(STEP_RETRY[step].retry).toBe(false);
    expect(shouldRetry(step, transient)).toBe(false);
  });

  test('every step of the runbook has exactly one stated policy', () => {
    expect([...retried, ...never].map(([s]) => s).sort()).toEqual([...DEPLOY_STEPS].sort());
    expect(Object.keys(STEP_RETRY).sort()).toEqual([...DEPLOY_STEPS].sort());
  });

  test('a retryable step is not retried for a deterministic failure (bad backup, refused credentials, no code at all)', () => {
    for (const step of ['backup', 'pull', 'preflight', 'rollback'] as const) {
      expect(shouldRetry(step, new Error('[BACKUP.FAILED] pg_dump: permission denied'))).toBe(false);
      expect(shouldRetry(step, new Error('[SSH.AUTH_FAILED] host key mismatch'))).toBe(false);
      expect(shouldRetry(step, new Error('something broke'))).toBe(false);
    }
  });

  test('the web service is down only from the stop to the health check: a failure there is rolled back', () => {
    expect([...DOWNTIME_STEPS]).toEqual(['stop', 'migrate', 'start', 'health']);
    for (const s of ['record', 'notify', 'retention', 'rollback', 'done'] as const)
      expect(outcomeOfFailure(s, true)).toBe('Failed');
  });
});

describe('errors: code and retryable flag', () => {
  test('an error is not retryable unless it says so', () => {
    const e = new PipelineError('DEPLOY.MIGRATION_FAILED', 'column "x" does not exist');
    expect(e).toMatchObject({
      code: 'DEPLOY.MIGRATION_FAILED',
      retryable: false,
      name: 'PipelineError',
      message: '[DEPLOY.MIGRATION_FAILED] column "x" does not exist',
    });
    expect(isRetryable(e)).toBe(false);
    expect(isRetryable(new PipelineError('SSH.CONNECT', 'refused'))).toBe(false); // the flag wins over the code
    expect(isRetryable(new PipelineError('ANY.THING', 'busy', true))).toBe(true);
  });

  test('a plain Error (as activity errors arrive) is retryable only for the transient code families', () => {
    for (const code of [
      'SSH.CONNECT',
      'SSH.TIMEOUT',
      'SSH.DISCONNECTED',
      'REGISTRY.UNAVAILABLE',
      'BLOB.THROTTLED',
      'BLOB.UNAVAILABLE',
      'GITHUB.UNAVAILABLE',
      'ARM.UNAVAILABLE',
      'NET.RESET',
    ])
      expect(isRetryable(new Error(`Activity failed: [${code}] x`))).toBe(true);
    for (const code of [
      'SSH.AUTH_FAILED',
      'DEPLOY.MIGRATION_FAILED',
      'X.NET.RESET',
      'BLOB.NOT_FOUND',
      'GITHUB.FORBIDDEN',
    ])
      expect(isRetryable(new Error(`[${code}] x`))).toBe(false);
    expect(isRetryable(new Error('ECONNRESET'))).toBe(false);
    expect(isRetryable(undefined)).toBe(false);
  });

  test('the code is read from the error object, then from the message; anything not shaped like A.B is ignored', () => {
    expect(errorCode({ code: 'BLOB.THROTTLED' })).toBe('BLOB.THROTTLED');
    expect(
      errorCode(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })),
    ).toBeUndefined();
    expect(errorCode(Object.assign(new Error('[SSH.TIMEOUT] after 30 s'), { code: 'ETIMEDOUT' }))).toBe(
      'SSH.TIMEOUT',
    );
    expect(errorCode('Activity failed: [REGISTRY.UNAVAILABLE] 502')).toBe('REGISTRY.UNAVAILABLE');
    expect(errorCode({ code: 42, message: '[NET.RESET]' })).toBeUndefined();
    for (const notCode of ['[lower.case] x', '[NOCODE] x', '[A.] x', 'A.B without brackets'])
      expect(errorCode(new Error(notCode))).toBeUndefined();
    expect(errorCode(new Error('[A1_B.C_2.D3] x'))).toBe('A1_B.C_2.D3');
    expect(errorCode(null)).toBeUndefined();
    expect(codeOf(new Error('no code here'))).toBe('DEPLOY.FAILED');
    expect(codeOf(new Error('[HEALTH.FAILED] 502'))).toBe('HEALTH.FAILED');
  });

  test('messageOf gives the message of an error and the text of anything else', () => {
    expect(messageOf(new Error('boom'))).toBe('boom');
    expect(messageOf('plain')).toBe('plain');
    expect(messageOf(42)).toBe('42');
  });
});

describe('what the deploy tells people (reason) and what it updates', () => {
  test('the reason keeps the coded line only, and a long one is cut to the limit with an ellipsis', () => {
    expect(
      reasonOf(
        new Error('Orchestrator function failed: [HEALTH.FAILED] /web/health 502\n    at step (x.js:1)'),
      ),
    ).toBe('[HEALTH.FAILED] /web/health 502');
    expect(reasonOf('  plain text  ')).toBe('plain text');
    expect(reasonOf({ why: 'x' })).toBe('{"why":"x"}');
    const r = reasonOf('y'.repeat(60), 50);
    expect(r).toBe('y'.repeat(49) + '…');
    expect(reasonOf('y'.repeat(50), 50)).toBe('y'.repeat(50));
  });

  test('modules: addons folders need module/file, hidden and tooling folders are not modules', () => {
    expect(modulesToUpdate(['addons/sale_x'])).toBe('');
    expect(
      modulesToUpdate([
        'addons/Bad-Name/x.py',
        'custom-addons/crm_y/x.py',
        'src/pos_z/a/b.xml',
        'custom_addons/k/x.py',
      ]),
    ).toBe('crm_y,k,pos_z');
    expect(
      modulesToUpdate([
        '.github/x/y.yml',
        'tests/test_a.py',
        'odoo/addons/base/x.py',
        'Top/x.py',
        'hr_k/x.py',
        'account_q/',
      ]),
    ).toBe('hr_k');
    expect(modulesToUpdate(['vendor/m1/x.py', 'm2/x.py'], { addonsDirs: ['vendor'] })).toBe('m1,m2');
    expect(modulesToUpdate([])).toBe('');
    expect(modulesToUpdate(['b_mod/x.py', 'a_mod/x.py', 'b_mod/y.py'])).toBe('a_mod,b_mod');
  });

  test('image references with digests, ports and no registry', () => {
    expect(tagOf('reg.io/acme/odoo@sha256:abc')).toBeUndefined();
    expect(tagOf('reg.io/acme/odoo:uat-v1@sha256:abc')).toBe('uat-v1');
    expect(tagOf('localhost:5000/odoo')).toBeUndefined();
    expect(repositoryOf('localhost/odoo-mta:uat-v1')).toBe('odoo-mta');
    expect(repositoryOf('acme/odoo-mta:uat-v1@sha256:abc')).toBe('acme/odoo-mta');
    expect(repositoryOf('reg.io/acme/odoo@sha256:abc')).toBe('acme/odoo');
    expect(repositoryOf('localhost:5000/odoo')).toBe('odoo');
  });

  test('bad deploy input names each problem before anything runs', () => {
    const ok = { environment: 'uat', version: '1.2.3', sha: 'abcdef1', imageRef: 'reg.io/o:uat-v1.2.3' };
    expect(validateDeployInput(ok)).toEqual([]);
    expect(validateDeployInput('uat')).toEqual(['the deploy input must be an object']);
    expect(validateDeployInput({ ...ok, environment: '-uat' })).toEqual([
      'environment must be a lowercase name',
    ]);
    expect(validateDeployInput({ ...ok, environment: 'u'.repeat(32) })).toEqual([
      'environment must be a lowercase name',
    ]);
    expect(validateDeployInput({ ...ok, environment: 'u'.repeat(31) })).toEqual([]);
    expect(validateDeployInput({ ...ok, version: '1.2.3;rm' })).toEqual(['version must be like 1.2.3']);
    expect(validateDeployInput({ ...ok, version: '1'.repeat(65) })).toEqual(['version must be like 1.2.3']);
    expect(validateDeployInput({ ...ok, sha: 'abcdef' })).toEqual(['sha must be a hex commit id']);
    expect(validateDeployInput({ ...ok, sha: 'a'.repeat(41) })).toEqual(['sha must be a hex commit id']);
    expect(validateDeployInput({ ...ok, sha: 'ABCDEF1' })).toEqual(['sha must be a hex commit id']);
    expect(validateDeployInput({ ...ok, imageRef: '-x/o:t' })).toEqual([
      'imageRef must be an image reference',
    ]);
    expect(validateDeployInput({ ...ok, imageRef: 'o:t\n' })).toEqual([
      'imageRef must be an image reference',
    ]);
    expect(
      validateDeployInput({ ...ok, environment: 'uat\n', version: 'x\n', sha: `${'a'.repeat(7)}\n` }),
    ).toHaveLength(3);
  });
});
