/**
 * The GitHub adapter (shared/adapters/github.ts, the real Octokit) against the HTTP fake of GitHub's
 * REST API: what the intake asks before a merge may deploy — is the commit on the default branch,
 * which VERSION does it carry — and how each GitHub failure reaches the pipeline: a coded error,
 * retryable only when GitHub is unavailable (an outage), never for a refusal.
 */
import { createGitHub, type GitHubPort } from '../../shared/adapters/github';
import { errorCode, isRetryable } from '../../shared/domain/errors';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github';

const sha = (c: string) => c.repeat(40);
const ROOT = sha('1');
const MERGED = sha('2');
const HEAD = sha('3');
const FEATURE = sha('4');
const UNKNOWN = sha('9');

let gh: FakeGitHub;
let api: GitHubPort;

beforeAll(async () => {
  gh = await startFakeGitHub();
  // main: ROOT ← MERGED ← HEAD; a feature branch forks at ROOT: FEATURE was never merged
  gh.addCommit(ROOT);
  gh.addCommit(MERGED, ROOT);
  gh.addCommit(HEAD, MERGED);
  gh.addCommit(FEATURE, ROOT);
  gh.refs.set('main', HEAD);
  gh.refs.set('feature/x', FEATURE);
  gh.setVersion(HEAD, '1.4.0');
  gh.files.set(`${HEAD}:addons/sale_custom/__manifest__.py`, "{'name': 'Sale custom'}\n");
  api = createGitHub({ repository: gh.repository, baseUrl: gh.url, token: 'ghs_adapterTest' });
});

afterAll(() => gh?.stop());

afterEach(() => {
  gh.failWith = undefined;
  gh.failPath = undefined;
});

async function thrown(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e,
  );
}

describe('isOnBranch: was the commit merged to the branch?', () => {
  it('the head and its ancestors are on it', async () => {
    expect(await api.isOnBranch(HEAD, 'main')).toBe(true);
    expect(await api.isOnBranch(MERGED, 'main')).toBe(true);
    expect(await api.isOnBranch(ROOT, 'main')).toBe(true);
  });

  it('a commit of another branch, or one GitHub does not know, is not', async () => {
    expect(await api.isOnBranch(FEATURE, 'main')).toBe(false);
    expect(await api.isOnBranch(UNKNOWN, 'main')).toBe(false);
  });

  it('a branch that does not exist is a clear, final error (not "not merged", not retried)', async () => {
    const err = await thrown(api.isOnBranch(HEAD, 'mian'));
    expect(errorCode(err)).toBe('GITHUB.NOT_FOUND');
    expect((err as Error).message).toContain('branch mian');
    expect(isRetryable(err)).toBe(false);
  });

  it('GitHub down while comparing: retryable, never taken as "not merged"', async () => {
    gh.failPath = { match: /\/compare\//, status: 502 };
    const err = await thrown(api.isOnBranch(MERGED, 'main'));
    expect((err as Error).message).toMatch(/comparing 2222222 with main: GitHub answered 502/);
    expect(errorCode(err)).toBe('GITHUB.UNAVAILABLE');
    expect(isRetryable(err)).toBe(true);
  });
});

describe('fileAt: the VERSION file at a commit', () => {
  it('a file: its text; a missing file: undefined; a directory: undefined', async () => {
    expect(await api.fileAt('VERSION', HEAD)).toBe('1.4.0\n');
    expect(await api.fileAt('VERSION', MERGED)).toBeUndefined();
    expect(await api.fileAt('addons', HEAD)).toBeUndefined();
  });

  it('GitHub down: retryable GITHUB.UNAVAILABLE naming the file', async () => {
    gh.failWith = 503;
    const err = await thrown(api.fileAt('VERSION', HEAD));
    expect(errorCode(err)).toBe('GITHUB.UNAVAILABLE');
    expect((err as Error).message).toMatch(/reading VERSION at 3333333: GitHub answered 503/);
    expect(isRetryable(err)).toBe(true);
  });
});

describe('GitHub refusing the pipeline', () => {
  it.each([401, 403])('%s: GITHUB.AUTH_FAILED pointing at the token, not retried', async (status) => {
    gh.failWith = status;
    const err = await thrown(api.checkRuns(HEAD, 'coverage'));
    expect(errorCode(err)).toBe('GITHUB.AUTH_FAILED');
    expect((err as Error).message).toMatch(/check the token or the App's permissions/);
    expect(isRetryable(err)).toBe(false);
  });

  it("422 on a commit status: GITHUB.REJECTED with GitHub's reason, not retried", async () => {
    gh.failWith = 422;
    const err = await thrown(
      api.createStatus(HEAD, {
        state: 'failure',
        context: 'deploy/uat',
        description: 'coverage 71 % < 80 %',
      }),
    );
    expect(errorCode(err)).toBe('GITHUB.REJECTED');
    expect((err as Error).message).toMatch(
      /posting status deploy\/uat on 3333333: GitHub rejected the request/,
    );
    expect(isRetryable(err)).toBe(false);
    expect(gh.posted).toEqual([]);
  });

  it('statuses unreadable during an outage: retryable', async () => {
    gh.failWith = 500;
    const err = await thrown(api.statusHistory(HEAD));
    expect(errorCode(err)).toBe('GITHUB.UNAVAILABLE');
    expect(isRetryable(err)).toBe(true);
  });
});
