import {
  odooShContext,
  odooShEnvironment,
  odooShInstanceId,
  odooShWaitText,
  parseOdooShBranches,
  planMove,
  readOdooShBuild,
} from '../../shared/domain/odoosh';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

describe('ODOOSH_BRANCHES', () => {
  it('reads name:stage pairs', () => {
    expect(parseOdooShBranches(['staging:staging', ' production:production ', 'feature/x:dev', ''])).toEqual([
      { branch: 'staging', stage: 'staging' },
      { branch: 'production', stage: 'production' },
      { branch: 'feature/x', stage: 'dev' },
    ]);
  });
  it.each([
    ['staging', /must end with :dev, :staging or :production/],
    ['staging:prod', /must end with/],
    ['bad..name:dev', /not name a valid branch/],
    ['-x:dev', /valid branch|must end/],
    ['a.lock:dev', /not name a valid branch/],
  ])('refuses %s with a message naming the entry', (entry, why) => {
    expect(() => parseOdooShBranches([entry])).toThrow(why);
  });
  it('refuses a branch listed twice', () => {
    expect(() => parseOdooShBranches(['main:staging', 'main:production'])).toThrow(/listed twice/);
  });
});

describe('moving the branch', () => {
  it('fast-forwards when the release contains the branch head', () => {
    expect(planMove('staging', A, B, 'ahead', false)).toEqual({
      move: true,
      fastForward: true,
      why: 'fast-forward staging aaaaaaa → bbbbbbb',
    });
  });
  it('does nothing when the branch is already there', () => {
    expect(planMove('staging', A, A, 'identical', true)).toMatchObject({
      move: false,
      code: 'ODOOSH.UP_TO_DATE',
    });
  });
  it.each(['behind', 'diverged'] as const)('refuses a %s move unless forced, and says why', (status) => {
    const refused = planMove('production', A, B, status, false);
    expect(refused).toMatchObject({ move: false, code: 'ODOOSH.NOT_FAST_FORWARD' });
    expect(refused.why).toMatch(/not a fast-forward: .*pass "force": true/);
    expect(planMove('production', A, B, status, true)).toMatchObject({ move: true, fastForward: false });
  });
});

describe("Odoo.sh's status", () => {
  const st = (context: string, state: string, target_url?: string) => ({
    context,
    state,
    description: `${state}!`,
    target_url,
  });
  it('reads the context of the stage only', () => {
    expect(odooShContext('staging')).toBe('ci/odoo.sh (staging)');
    expect(readOdooShBuild([st('ci/odoo.sh (production)', 'success')], 'staging')).toEqual({
      state: 'pending',
    });
    expect(readOdooShBuild([st('ci/odoo.sh (staging)', 'pending')], 'staging')).toEqual({
      state: 'pending',
      description: 'pending!',
    });
    expect(readOdooShBuild([st('ci/odoo.sh (staging)', 'success', 'https://x.odoo.com')], 'staging')).toEqual(
      { state: 'success', description: 'success!', targetUrl: 'https://x.odoo.com' },
    );
    expect(readOdooShBuild([st('ci/odoo.sh (staging)', 'error')], 'staging')).toMatchObject({
      state: 'failure',
    });
  });
  it('says how long it waited: whole minutes as minutes, a fraction of ODOOSH_WAIT_MINUTES in seconds', () => {
    expect(odooShWaitText(60)).toBe('60 min');
    expect(odooShWaitText(1)).toBe('1 min');
    expect(odooShWaitText(0.2)).toBe('12 s');
    expect(odooShWaitText(1.5)).toBe('90 s');
  });
  it('names ledger environments and instance ids from the branch', () => {
    expect(odooShEnvironment('feature/New_UI')).toBe('odoosh-feature-new-ui');
    expect(odooShInstanceId('staging', '1.2.0', A)).toBe('deploy-odoosh-staging-1.2.0-aaaaaaaaaaaa');
  });
});
