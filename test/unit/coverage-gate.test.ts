import {
  clip,
  decideGate,
  deployInstanceId,
  deployMessageId,
  parseCoveragePercent,
  readCoverage,
  type CheckRun,
  type CommitStatus,
  type CoverageSource,
  type GatePolicy,
} from '../../shared/domain/coverage-gate';

/** the CI source: GitHub Actions posting with GITHUB_TOKEN (statuses) and its App (check runs) */
const CI: CoverageSource = { context: 'coverage', login: 'github-actions[bot]', appId: 15368 };
const policy: GatePolicy = { min: 80, tolerance: 0, waitMinutes: 30 };
const present = (percent: number) => ({ state: 'present' as const, percent, source: 'status' as const });

describe('parseCoveragePercent', () => {
  it.each([
    ['82.3%', 82.3],
    ['Coverage: 82.3 % of lines', 82.3],
    ['76,4 %', 76.4],
    ['100%', 100],
    ['81', 81],
    [' 80.0 ', 80],
    ['branches 70% lines 85%', 70],
  ])('%j → %d', (text, n) => expect(parseCoveragePercent(text)).toBe(n));

  it.each([[''], [null], ['coverage ok'], ['250 %'], ['v1.2.3'], ['12 tests passed']])(
    '%j → undefined',
    (text) => expect(parseCoveragePercent(text)).toBeUndefined(),
  );
});

describe('readCoverage', () => {
  const st = (over: Partial<CommitStatus>): CommitStatus => ({
    context: 'coverage',
    state: 'success',
    description: '85.0%',
    updated_at: '2026-01-01T00:00:00Z',
    creator: { login: 'github-actions[bot]', id: 41898282 },
    ...over,
  });
  const run = (over: Partial<CheckRun>): CheckRun => ({
    name: 'coverage',
    status: 'completed',
    conclusion: 'success',
    completed_at: '2026-01-01T00:00:00Z',
    output: { title: 'Coverage 83.1%', summary: '' },
    app: { id: 15368, slug: 'github-actions' },
    ...over,
  });

  it('reads the latest status of the context', () => {
    const r = readCoverage(
      [
        st({ description: '70%', updated_at: '2026-01-01T00:00:00Z' }),
        st({ description: '88.5%', updated_at: '2026-01-02T00:00:00Z' }),
        st({ context: 'ci', description: '10%' }),
      ],
      [],
      CI,
    );
    expect(r).toEqual({ state: 'present', percent: 88.5, source: 'status' });
  });
  it('pending status → pending; a status without a number → unreadable', () => {
    expect(readCoverage([st({ state: 'pending', description: 'running' })], [], CI)).toEqual({
      state: 'pending',
      source: 'status',
    });
    expect(readCoverage([st({ description: 'all good' })], [], CI)).toEqual({
      state: 'unreadable',
      source: 'status',
      text: 'all good',
    });
  });
  it('falls back to a check run of the same name', () => {
    expect(readCoverage([], [run({})], CI)).toEqual({ state: 'present', percent: 83.1, source: 'check_run' });
    expect(
      readCoverage([], [run({ output: { title: 'Tests', summary: 'Line coverage: 90.2 %' } })], CI),
    ).toMatchObject({ percent: 90.2 });
    expect(readCoverage([], [run({ status: 'in_progress', conclusion: null })], CI)).toEqual({
      state: 'pending',
      source: 'check_run',
    });
    expect(readCoverage([], [run({ output: { title: 'done' } })], CI)).toMatchObject({ state: 'unreadable' });
    expect(readCoverage([], [run({ name: 'lint' })], CI)).toEqual({ state: 'missing' });
  });
  it('nothing at all → missing', () => expect(readCoverage([], [], CI)).toEqual({ state: 'missing' }));
});

describe('decideGate', () => {
  it('passes at or above the minimum with no UAT release', () => {
    expect(decideGate({ reading: present(80), policy, waitedMinutes: 0 })).toEqual({
      outcome: 'pass',
      coverage: 80,
      description: 'coverage 80.0 % ≥ 80 %',
    });
  });
  it('blocks below the minimum with the exact description', () => {
    expect(decideGate({ reading: present(76.4), policy, waitedMinutes: 0 })).toEqual({
      outcome: 'block',
      coverage: 76.4,
      description: 'coverage 76.4 % < 80 %',
    });
    expect(decideGate({ reading: present(79.94), policy, waitedMinutes: 0 })).toMatchObject({
      outcome: 'block',
      description: 'coverage 79.9 % < 80 %',
    });
  });
  it('never shows a contradictory message at the rounding edge', () => {
    // 79.96 shows as 80.0: it passes rather than reading "coverage 80.0 % < 80 %"
    expect(decideGate({ reading: present(79.96), policy, waitedMinutes: 0 }).outcome).toBe('pass');
  });
  it('blocks a regression against what UAT runs now', () => {
    expect(decideGate({ reading: present(81), policy, uatCoverage: 82.3, waitedMinutes: 0 })).toEqual({
      outcome: 'block',
      coverage: 81,
      description: 'coverage 81.0 % < UAT 82.3 %',
    });
    expect(decideGate({ reading: present(82.3), policy, uatCoverage: 82.3, waitedMinutes: 0 })).toMatchObject(
      { outcome: 'pass', description: 'coverage 82.3 % ≥ 80 %, UAT 82.3 %' },
    );
  });
  it('tolerance allows a small drop and is named when it blocks', () => {
    const tol = { ...policy, tolerance: 0.5 };
    expect(
      decideGate({ reading: present(81.9), policy: tol, uatCoverage: 82.3, waitedMinutes: 0 }).outcome,
    ).toBe('pass');
    expect(
      decideGate({ reading: present(81.7), policy: tol, uatCoverage: 82.3, waitedMinutes: 0 }),
    ).toMatchObject({ outcome: 'block', description: 'coverage 81.7 % < UAT 82.3 % - 0.5 pt tolerance' });
  });
  it('a custom minimum shows as configured', () => {
    expect(
      decideGate({ reading: present(85), policy: { ...policy, min: 87.5 }, waitedMinutes: 0 }).description,
    ).toBe('coverage 85.0 % < 87.5 %');
  });
  it('waits for missing or pending coverage, then gives up with the reason', () => {
    expect(decideGate({ reading: { state: 'missing' }, policy, waitedMinutes: 5 })).toEqual({
      outcome: 'wait',
      description: 'waiting for the coverage status',
    });
    expect(
      decideGate({ reading: { state: 'pending', source: 'status' }, policy, waitedMinutes: 29.9 }).outcome,
    ).toBe('wait');
    expect(decideGate({ reading: { state: 'missing' }, policy, waitedMinutes: 30 })).toEqual({
      outcome: 'block',
      description: 'no coverage status after 30 min',
    });
    expect(
      decideGate({ reading: { state: 'pending', source: 'check_run' }, policy, waitedMinutes: 31 }),
    ).toEqual({ outcome: 'block', description: 'coverage still pending after 30 min' });
    expect(
      decideGate({
        reading: { state: 'missing' },
        policy: { ...policy, waitMinutes: 120 },
        waitedMinutes: 121,
      }).description,
    ).toBe('no coverage status after 2 h');
  });
  it('blocks an unreadable status, quoting it within 140 characters', () => {
    const d = decideGate({
      reading: { state: 'unreadable', source: 'status', text: 'x'.repeat(300) },
      policy,
      waitedMinutes: 0,
    });
    expect(d.outcome).toBe('block');
    expect(d.description.length).toBeLessThanOrEqual(140);
    expect(d.description.startsWith('coverage status has no percentage: "xxx')).toBe(true);
  });
});

describe('ids', () => {
  const sha = '0123456789abcdef0123456789abcdef01234567';
  it('message id is stable per environment and commit', () => {
    expect(deployMessageId('uat', sha)).toBe(`deploy-uat-${sha}`);
    expect(deployMessageId('uat', sha)).toBe(deployMessageId('uat', sha));
  });
  it('instance id derives from environment, version and sha and is safe for Durable', () => {
    expect(deployInstanceId('uat', '1.2.3', sha)).toBe('deploy-uat-1.2.3-0123456789ab');
    expect(deployInstanceId('uat', '1.2.3+build/7#x', sha)).toBe('deploy-uat-1.2.3_build_7_x-0123456789ab');
  });
  it('clip keeps short text and truncates long text to 140', () => {
    expect(clip('short')).toBe('short');
    expect(clip('y'.repeat(200))).toHaveLength(140);
  });
});

describe('rules of the coverage reading (what CI must publish, and what does not count)', () => {
  const ci = { login: 'github-actions[bot]', id: 41898282 };
  const st = (over: Partial<CommitStatus>): CommitStatus => ({
    context: 'coverage',
    state: 'success',
    description: '85.0%',
    updated_at: '2026-01-01T00:00:00Z',
    creator: ci,
    ...over,
  });
  const run = (over: Partial<CheckRun>): CheckRun => ({
    name: 'coverage',
    status: 'completed',
    conclusion: 'success',
    completed_at: '2026-01-01T00:00:00Z',
    output: { title: 'Coverage 83.1%' },
    app: { id: 15368, slug: 'github-actions' },
    ...over,
  });

  it('a status from another context is not coverage, whatever it reads', () => {
    expect(readCoverage([st({ context: 'ci/lint', description: '99%' })], [], CI)).toEqual({
      state: 'missing',
    });
    expect(readCoverage([st({ context: 'coverage-old', description: '99%' })], [], CI)).toEqual({
      state: 'missing',
    });
    expect(
      readCoverage([st({ context: 'ci/lint', description: '99%' }), st({ description: '81.5%' })], [], CI),
    ).toEqual({ state: 'present', percent: 81.5, source: 'status' });
  });

  it('a check run of another name is not coverage either', () => {
    expect(readCoverage([], [run({ name: 'coverage (lint)', output: { title: '99%' } })], CI)).toEqual({
      state: 'missing',
    });
  });

  it('82.35 % is 82.35, not 35 or 82', () => {
    expect(parseCoveragePercent('82.35 %')).toBe(82.35);
    expect(parseCoveragePercent('Coverage: 82.35% of lines')).toBe(82.35);
    expect(parseCoveragePercent('82.35')).toBe(82.35);
    expect(readCoverage([st({ description: 'Coverage: 82.35 %' })], [], CI)).toEqual({
      state: 'present',
      percent: 82.35,
      source: 'status',
    });
  });

  it('the newest status of the CI counts, whatever order GitHub lists them in', () => {
    const old = st({ description: '95%', updated_at: '2026-01-01T00:00:00Z' });
    const fresh = st({ description: '71%', updated_at: '2026-01-03T00:00:00Z' });
    expect(readCoverage([old, fresh], [], CI)).toMatchObject({ percent: 71 });
    expect(readCoverage([fresh, old], [], CI)).toMatchObject({ percent: 71 });
  });

  it('an in-progress check run beside a completed one is pending', () => {
    expect(
      readCoverage(
        [],
        [
          run({ output: { title: '90%' } }),
          run({ status: 'in_progress', conclusion: null, completed_at: null }),
        ],
        CI,
      ),
    ).toEqual({ state: 'pending', source: 'check_run' });
    expect(
      readCoverage(
        [],
        [run({ status: 'queued', conclusion: null, completed_at: null }), run({ output: { title: '90%' } })],
        CI,
      ),
    ).toEqual({ state: 'pending', source: 'check_run' });
  });

  it('the newest completed check run is used', () => {
    const older = run({ completed_at: '2026-01-01T00:00:00Z', output: { title: 'Coverage 90%' } });
    const newer = run({ completed_at: '2026-01-02T00:00:00Z', output: { title: 'Coverage 70%' } });
    expect(readCoverage([], [older, newer], CI)).toMatchObject({ state: 'present', percent: 70 });
    expect(readCoverage([], [newer, older], CI)).toMatchObject({ state: 'present', percent: 70 });
  });

  it('a commit status from the CI takes precedence over its check run', () => {
    expect(readCoverage([st({ description: '81%' })], [run({ output: { title: '99%' } })], CI)).toEqual({
      state: 'present',
      percent: 81,
      source: 'status',
    });
  });

  it('a status posted by anyone but the CI account is refused, naming who posted it (GitHub logins compare case-insensitively)', () => {
    expect(readCoverage([st({ creator: { login: 'mallory', id: 6 }, description: '99%' })], [], CI)).toEqual({
      state: 'refused',
      source: 'status',
      reason: "coverage status from user 'mallory', not the CI source (github-actions[bot])",
    });
    expect(readCoverage([st({ creator: null })], [], CI)).toMatchObject({
      state: 'refused',
      reason: expect.stringContaining('an unknown user'),
    });
    expect(readCoverage([st({ creator: { login: 'GitHub-Actions[bot]' } })], [], CI)).toMatchObject({
      state: 'present',
      percent: 85,
    });
    // no status source configured: no status counts
    expect(readCoverage([st({})], [], { context: 'coverage', appId: 15368 })).toMatchObject({
      state: 'refused',
      reason: expect.stringContaining('no status source configured'),
    });
  });

  it('a forged status beside a trusted check run does not hide it', () => {
    expect(
      readCoverage(
        [st({ creator: { login: 'mallory' }, description: '99%' })],
        [run({ output: { title: '83%' } })],
        CI,
      ),
    ).toEqual({ state: 'present', percent: 83, source: 'check_run' });
  });

  it('a check run from another GitHub App is refused, naming the app', () => {
    expect(readCoverage([], [run({ app: { id: 7, slug: 'evil' } })], CI)).toEqual({
      state: 'refused',
      source: 'check_run',
      reason: "coverage check run from app 'evil' (id 7), not the CI source (app 15368)",
    });
    expect(readCoverage([], [run({})], { context: 'coverage', login: 'github-actions[bot]' })).toMatchObject({
      state: 'refused',
      reason: expect.stringContaining('no check run source configured'),
    });
  });

  it.each(['failure', 'error'])(
    'a CI status in state %s does not count even when it reads 99 %%',
    (state) => {
      expect(readCoverage([st({ state, description: '99 %' })], [], CI)).toEqual({
        state: 'refused',
        source: 'status',
        reason: `coverage status state ${state}: "99 %"`,
      });
    },
  );

  it.each(['failure', 'cancelled', 'neutral', 'timed_out', 'skipped'])(
    'a CI check run concluded %s does not count',
    (conclusion) => {
      expect(readCoverage([], [run({ conclusion })], CI)).toMatchObject({
        state: 'refused',
        reason: `coverage check run concluded ${conclusion}: "Coverage 83.1%"`,
      });
    },
  );

  it('a refused reading blocks at once (no waiting), with the reason as the commit status', () => {
    expect(
      decideGate({
        reading: {
          state: 'refused',
          source: 'status',
          reason: "coverage status from user 'mallory', not the CI source (github-actions[bot])",
        },
        policy,
        waitedMinutes: 0,
      }),
    ).toEqual({
      outcome: 'block',
      description: "coverage status from user 'mallory', not the CI source (github-actions[bot])",
    });
  });
});
