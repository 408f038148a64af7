/**
 * The coverage gate at its edges, as the commit status a developer reads (issue #20, survivors of the
 * coverage-gate mutation run): a percentage above 100 is no reading, the wait is named in hours only
 * when it is a whole number of hours of two or more, a description of exactly 140 characters is kept.
 */
import { clip, decideGate, parseCoveragePercent, readCoverage } from '../../shared/domain/coverage-gate';

const policy = { min: 80, tolerance: 0, waitMinutes: 60 };

test('a percentage above 100 or an empty text is no reading; 0 % and 100 % are', () => {
  expect(parseCoveragePercent('120 %')).toBeUndefined();
  expect(parseCoveragePercent('100.5')).toBeUndefined();
  expect(parseCoveragePercent('')).toBeUndefined();
  expect(parseCoveragePercent('0 %')).toBe(0);
  expect(parseCoveragePercent('100 %')).toBe(100);
});

test.each([
  [60, 'no coverage status after 60 min'],
  [90, 'no coverage status after 90 min'],
  [120, 'no coverage status after 2 h'],
  [150, 'no coverage status after 150 min'],
])('giving up after %i minutes says "%s"', (waitMinutes, description) => {
  expect(
    decideGate({
      reading: { state: 'missing' },
      policy: { ...policy, waitMinutes },
      waitedMinutes: waitMinutes,
    }),
  ).toEqual({ outcome: 'block', description });
});

test('while waiting, pending and missing coverage are told apart', () => {
  expect(
    decideGate({ reading: { state: 'pending', source: 'check_run' }, policy, waitedMinutes: 1 }),
  ).toEqual({ outcome: 'wait', description: 'coverage pending' });
  expect(decideGate({ reading: { state: 'missing' }, policy, waitedMinutes: 1 })).toEqual({
    outcome: 'wait',
    description: 'waiting for the coverage status',
  });
});

test('a description of exactly 140 characters is kept whole; 141 is cut to 140 with an ellipsis', () => {
  expect(clip('x'.repeat(140))).toBe('x'.repeat(140));
  expect(clip('x'.repeat(141))).toBe('x'.repeat(139) + '…');
});

test('with only a CI app configured, a status that names no creator is not coverage (an unset login trusts nobody)', () => {
  // an attacker's status as GitHub might list it when the account is gone: no creator
  const r = readCoverage(
    [{ context: 'coverage', state: 'success', description: '99 %', creator: null }],
    [],
    { context: 'coverage', appId: 15368 },
  );
  expect(r.state).toBe('refused');
});

test('with only a CI account configured, a check run that names no app is not coverage (an unset app id trusts nobody)', () => {
  const r = readCoverage(
    [],
    [
      {
        name: 'coverage',
        status: 'completed',
        conclusion: 'success',
        completed_at: '2026-12-06T09:00:00Z',
        output: { title: '99 %' },
        app: null,
      },
    ],
    { context: 'coverage', login: 'github-actions[bot]' },
  );
  expect(r.state).toBe('refused');
});
