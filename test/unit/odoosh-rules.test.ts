/**
 * Odoo.sh rules that decide whether a production branch moves (issue #20): which branch names the
 * pipeline may push, when a move is a fast-forward, and how Odoo.sh's commit status is read.
 */
import {
  SHA40,
  odooShEnvironment,
  odooShInstanceId,
  parseOdooShBranches,
  planMove,
  readOdooShBuild,
} from '../../shared/domain/odoosh';

const HEAD = '1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const RELEASE = '2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';

describe('ODOOSH_BRANCHES: only names git accepts as a branch, with a known stage', () => {
  test.each([
    '/main',
    'a//b',
    'main/',
    'a..b',
    'main.lock',
    'main@{1}',
    '-main',
    'has space',
    'semi;colon',
    'x'.repeat(101),
  ])('refuses the branch name %j, naming the entry', (branch) => {
    expect(() => parseOdooShBranches([`${branch}:staging`])).toThrow(
      `ODOOSH_BRANCHES: "${branch}:staging" does not name a valid branch`,
    );
  });

  test('accepts ordinary branch names up to 100 characters', () => {
    expect(
      parseOdooShBranches(['release/17.0-x_y:production', `${'x'.repeat(100)}:dev`, 'main.v2:staging']).map(
        (b) => b.branch,
      ),
    ).toEqual(['release/17.0-x_y', 'x'.repeat(100), 'main.v2']);
  });

  test('the stage is the text after the last colon, spelled exactly', () => {
    expect(() => parseOdooShBranches(['main:Production'])).toThrow(
      'ODOOSH_BRANCHES: "main:Production" must end with :dev, :staging or :production',
    );
    expect(() => parseOdooShBranches([':dev'])).toThrow(
      'ODOOSH_BRANCHES: ":dev" does not name a valid branch',
    );
    expect(() => parseOdooShBranches(['main:'])).toThrow('must end with :dev, :staging or :production');
    expect(parseOdooShBranches(['  main:staging   ', '   '])).toEqual([{ branch: 'main', stage: 'staging' }]);
  });

  test('a branch listed twice is refused by name, even with another stage', () => {
    expect(() => parseOdooShBranches(['main:dev', 'other:dev', 'main:production'])).toThrow(
      'ODOOSH_BRANCHES: branch main is listed twice',
    );
    expect(parseOdooShBranches(['a:dev', 'b:dev'])).toHaveLength(2);
  });
});

describe('moving a branch to a release', () => {
  test('the messages say what happens with short commit ids', () => {
    expect(planMove('main', HEAD, HEAD, 'identical', false)).toEqual({
      move: false,
      code: 'ODOOSH.UP_TO_DATE',
      why: 'main is already at 1111111',
    });
    expect(planMove('main', HEAD, RELEASE, 'behind', false)).toEqual({
      move: false,
      code: 'ODOOSH.NOT_FAST_FORWARD',
      why: 'not a fast-forward: 2222222 is older than main\'s head 1111111 (moving back); pass "force": true to move it anyway',
    });
    expect(planMove('main', HEAD, RELEASE, 'diverged', true)).toEqual({
      move: true,
      fastForward: false,
      why: "forced: 2222222 and main's head 1111111 have diverged",
    });
    expect(planMove('main', HEAD, RELEASE, 'behind', true)).toEqual({
      move: true,
      fastForward: false,
      why: "forced: 2222222 is older than main's head 1111111 (moving back)",
    });
  });

  test('a fast-forward needs no force, and force never turns "already there" into a push', () => {
    expect(planMove('main', HEAD, RELEASE, 'ahead', true)).toEqual({
      move: true,
      fastForward: true,
      why: 'fast-forward main 1111111 → 2222222',
    });
    expect(planMove('main', HEAD, HEAD, 'identical', true)).toMatchObject({ move: false });
  });
});

describe("reading Odoo.sh's build status", () => {
  const ctx = 'ci/odoo.sh (production)';

  test('the newest status of the stage decides (GitHub lists the newest first)', () => {
    expect(
      readOdooShBuild(
        [
          { context: ctx, state: 'failure' },
          { context: ctx, state: 'success' },
        ],
        'production',
      ),
    ).toEqual({ state: 'failure' });
    expect(
      readOdooShBuild(
        [
          { context: 'ci/odoo.sh (staging)', state: 'success' },
          { context: ctx, state: 'pending' },
        ],
        'production',
      ),
    ).toEqual({ state: 'pending' });
  });

  test('no status yet is pending; empty or null descriptions and links are left out', () => {
    expect(readOdooShBuild([], 'production')).toEqual({ state: 'pending' });
    expect(
      readOdooShBuild(
        [{ context: ctx, state: 'success', description: null, target_url: null }],
        'production',
      ),
    ).toEqual({ state: 'success' });
    expect(
      readOdooShBuild([{ context: ctx, state: 'success', description: '', target_url: '' }], 'production'),
    ).toEqual({ state: 'success' });
    expect(readOdooShBuild([{ context: ctx, state: 'pending', description: '' }], 'production')).toEqual({
      state: 'pending',
    });
    expect(
      readOdooShBuild(
        [{ context: ctx, state: 'error', description: 'build failed', target_url: 'https://x.odoo.com/b/1' }],
        'production',
      ),
    ).toEqual({
      state: 'failure',
      description: 'build failed',
      targetUrl: 'https://x.odoo.com/b/1',
    });
  });
});

describe('names derived from a branch', () => {
  test('the ledger environment is lowercase, at most 31 characters, without a trailing dash', () => {
    expect(odooShEnvironment('Release/17.0')).toBe('odoosh-release-17-0');
    const long = odooShEnvironment('a'.repeat(23) + '/b');
    expect(long).toBe('odoosh-' + 'a'.repeat(23));
    expect(odooShEnvironment('x'.repeat(60))).toHaveLength(31);
    expect(odooShEnvironment('a__b')).toBe('odoosh-a-b');
  });

  test('the instance id uses the 12-character commit prefix and a cleaned branch', () => {
    expect(odooShInstanceId('Feature/New_UI', '1.2.0', RELEASE)).toBe(
      'deploy-odoosh-feature-new-ui-1.2.0-2222222bbbbb',
    );
    expect(SHA40.test(RELEASE)).toBe(true);
    for (const bad of [RELEASE.toUpperCase(), RELEASE.slice(1), `${RELEASE}0`, ` ${RELEASE}`])
      expect(SHA40.test(bad)).toBe(false);
  });
});
