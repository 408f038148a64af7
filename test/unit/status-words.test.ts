/**
 * What the status page and `odoo-pipeline status` say in plain words (issue #20, round 4): every step,
 * outcome and kind of work the orchestrators report reads as words an operator understands (never an
 * empty label), the runbook position, and the figures (sizes, durations, times) at their unit edges.
 */
import {
  formatAbsolute,
  formatBytes,
  formatDuration,
  formatRelative,
  formatWhen,
  isTimeZone,
  kindText,
  needsText,
  outcomeText,
  progressOf,
  stepText,
  PROD_RUNBOOK,
  UAT_RUNBOOK,
} from '../../shared/domain/status-view';
import { DEPLOY_STEPS } from '../../shared/domain/deploy-plan';

// the steps each orchestrator reports (deploy-plan DEPLOY_STEPS, deployProd's ProdStep, refresh's RefreshStep)
const PROD_STEPS = [
  'prepare',
  'request-approval',
  'awaiting-approval',
  'promote',
  'preflight',
  'backup',
  'pull',
  'stop',
  'migrate',
  'start',
  'health',
  'health-stable',
  'record',
  'retention',
  'awaiting-rollback-decision',
  'rollback',
  'done',
];
const REFRESH_STEPS = [
  'prepare',
  'backup-uat',
  'source',
  'stop',
  'restore',
  'neutralize',
  'anonymize+verify',
  'filestore',
  'swap',
  'start',
  'health',
  'cleanup',
  'recover',
  'report',
  'done',
];

describe('plain words', () => {
  test.each([
    ...new Set([
      ...DEPLOY_STEPS,
      ...PROD_STEPS,
      ...REFRESH_STEPS,
      'starting',
      'requested',
      'approved',
      'retag',
      'snapshot',
    ]),
  ])('step %s reads as words, not as its code name or an empty label', (step) => {
    const words = stepText(step);
    expect(words.trim().length).toBeGreaterThan(3);
    // a code name with a dash or a plus is never shown as is
    if (/[-+]/.test(step)) expect(words).not.toBe(step);
  });

  test('steps that read the same as their name still read as that word', () => {
    expect(stepText('starting')).toBe('starting');
    expect(stepText('requested')).toBe('requested');
    expect(stepText('approved')).toBe('approved');
    expect(stepText(undefined)).toBe('starting');
    expect(stepText('')).toBe('starting');
    expect(stepText('new_step--two')).toBe('new step two');
  });

  test.each([
    'Succeeded',
    'Completed',
    'Failed',
    'RolledBack',
    'NeedsAttention',
    'Rejected',
    'Expired',
    'TimedOut',
    'Terminated',
    'LeakFound',
    'Running',
    'Pending',
  ])('outcome %s reads as lower-case words', (outcome) => {
    const words = outcomeText(outcome);
    expect(words.length).toBeGreaterThan(4);
    expect(words).toBe(words.toLowerCase());
  });

  test('a failure outcome never reads like a success', () => {
    for (const o of ['Failed', 'RolledBack', 'NeedsAttention', 'LeakFound', 'TimedOut', 'Terminated'])
      expect(outcomeText(o)).not.toMatch(/succeeded|finished/);
    expect(outcomeText('RolledBack')).toMatch(/rolled back/);
    expect(outcomeText('LeakFound')).toMatch(/personal data/);
    expect(outcomeText('Terminated')).toMatch(/operator/);
    expect(outcomeText('SomethingNew')).toBe('something new');
    expect(outcomeText(undefined)).toBe('unknown');
  });

  test('each kind of work names its environment', () => {
    expect(kindText('deployUat')).toMatch(/^UAT deploy$/);
    expect(kindText('deployProd')).toMatch(/^PROD deploy$/);
    expect(kindText('refreshUat')).toMatch(/UAT refresh from PROD/);
    expect(kindText('deployOdooSh')).toMatch(/Odoo\.sh/);
    expect(kindText('deployStaging', 'staging')).toBe('STAGING deploy');
    expect(kindText('somethingElse')).toBe('somethingElse');
  });

  test('who is needed: "needs N of …"', () => {
    expect(needsText({ people: ['alice', 'bob'], needed: 1 })).toBe('needs 1 of alice, bob');
  });
});

describe('position on the runbook', () => {
  test('the first step is 0 %, the last 100 %, and aliases count as their main step', () => {
    expect(progressOf('deployUat', 'prepare')).toMatchObject({
      index: 1,
      total: UAT_RUNBOOK.length,
      percent: 0,
    });
    expect(progressOf('deployUat', 'done')).toMatchObject({ index: UAT_RUNBOOK.length, percent: 100 });
    expect(progressOf('deployProd', 'done')).toMatchObject({ index: PROD_RUNBOOK.length, percent: 100 });
    expect(progressOf('deployUat', 'wait-image')).toMatchObject({ index: 2, text: 'waiting for the image' });
    expect(progressOf('deployUat', 'notify')).toMatchObject({ index: UAT_RUNBOOK.indexOf('record') + 1 });
    expect(progressOf('deployProd', 'retag')).toMatchObject({ index: 3 });
    expect(progressOf('deployProd', 'approved')).toMatchObject({ index: 3 });
    expect(progressOf('deployProd', 'snapshot')).toMatchObject({ index: 4 });
    expect(progressOf('deployProd', 'requested')).toMatchObject({ index: 1 });
  });

  test('the UAT and PROD runbooks follow the deploy order: backup before stop, migrate between stop and start', () => {
    for (const book of [UAT_RUNBOOK, PROD_RUNBOOK]) {
      const at = (s: string) => book.indexOf(s);
      expect(at('prepare')).toBe(0);
      expect(at('backup')).toBeGreaterThan(0);
      expect(at('backup')).toBeLessThan(at('stop'));
      expect(at('stop')).toBeLessThan(at('migrate'));
      expect(at('migrate')).toBeLessThan(at('start'));
      expect(at('start')).toBeLessThan(at('health'));
      expect(at('health')).toBeLessThan(at('record'));
      expect(book[book.length - 1]).toBe('done');
      for (const s of book) expect(stepText(s).length).toBeGreaterThan(3);
    }
    expect(PROD_RUNBOOK.indexOf('awaiting-approval')).toBeLessThan(PROD_RUNBOOK.indexOf('promote'));
    expect(PROD_RUNBOOK.indexOf('promote')).toBeLessThan(PROD_RUNBOOK.indexOf('backup'));
  });

  test('while a person is awaited the position shows, the percentage does not', () => {
    const p = progressOf('deployProd', 'awaiting-approval');
    expect(p).toMatchObject({ index: 2, waitingForPerson: true });
    expect(p.percent).toBeUndefined();
    expect(progressOf('deployProd', 'awaiting-rollback-decision')).toMatchObject({ waitingForPerson: true });
    expect(progressOf('deployUat', 'migrate').waitingForPerson).toBeUndefined();
  });

  test('a step off the runbook, or work without one, has no position', () => {
    expect(progressOf('deployUat', 'rollback')).toEqual({ step: 'rollback', text: 'rolling back' });
    expect(progressOf('refreshUat', 'restore')).toEqual({ step: 'restore', text: 'restoring the PROD copy' });
    expect(progressOf('deployUat', undefined)).toEqual({ step: 'starting' });
  });
});

describe('figures at their unit edges', () => {
  test('sizes', () => {
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1024)).toBe('1.0 KiB');
    expect(formatBytes(1024 ** 2)).toBe('1.0 MiB');
    expect(formatBytes(1024 ** 3 * 1.5)).toBe('1.5 GiB');
    expect(formatBytes(1024 ** 4)).toBe('1.0 TiB');
    expect(formatBytes(1024 ** 5)).toBe('1024.0 TiB');
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(undefined)).toBe('?');
    expect(formatBytes(Number.NaN)).toBe('?');
    expect(formatBytes(Infinity)).toBe('?');
  });

  test('durations', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(59_999)).toBe('59s');
    expect(formatDuration(60_000)).toBe('1m 00s');
    expect(formatDuration(3_599_000)).toBe('59m 59s');
    expect(formatDuration(3_600_000)).toBe('1h 00m');
    expect(formatDuration(48 * 3_600_000 - 1)).toBe('47h 59m');
    expect(formatDuration(48 * 3_600_000)).toBe('2d 0h');
    expect(formatDuration(-1)).toBe('?');
    expect(formatDuration(undefined)).toBe('?');
    expect(formatDuration(Infinity)).toBe('?');
  });

  test('relative and absolute times', () => {
    const now = new Date('2026-12-06T05:00:00Z');
    expect(formatRelative('2026-12-06T05:00:00Z', now)).toBe('in 0s');
    expect(formatRelative('2026-12-06T04:59:59Z', now)).toBe('1s ago');
    expect(formatRelative('2026-12-06T05:02:05Z', now)).toBe('in 2m 05s');
    expect(formatRelative('not a date', now)).toBe('?');
    expect(isTimeZone('Europe/Brussels')).toBe(true);
    expect(isTimeZone('Mars/Olympus')).toBe(false);
    expect(formatAbsolute('2026-12-06T04:42:00Z', 'Europe/Brussels')).toBe('6 Dec 2026, 05:42 CET');
    expect(formatAbsolute('2026-12-06T04:42:00Z')).toBe('6 Dec 2026, 04:42 UTC');
    expect(formatAbsolute('2026-12-06T00:05:00Z', 'Mars/Olympus')).toBe('6 Dec 2026, 00:05 UTC');
    expect(formatAbsolute('nope')).toBe('?');
    expect(formatWhen('2026-12-06T04:42:00Z', now, 'Europe/Brussels')).toBe(
      '6 Dec 2026, 05:42 CET (18m 00s ago)',
    );
    expect(formatWhen(undefined, now)).toBe('-');
    expect(formatWhen('', now)).toBe('-');
    expect(formatWhen('soon', now)).toBe('soon');
  });
});
