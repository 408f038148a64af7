/**
 * CI shows only the end of `npm test`'s output, which is hundreds of suites long. scripts/test-jest.js
 * therefore ends with the failed tests again, as scripts/jest-failures.js (a jest reporter beside the
 * default one) recorded them: which suite, which test, and the first lines of the message. A failure
 * that does not show there cannot be fixed from the CI log (a stop once failed on "1 failed" and
 * nothing more). Real jest runs real failing suites here: an assertion, a suite that cannot load, a
 * failing afterAll, a passing test that must not be listed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './bicep-cli';

type Failure = { suite: string; test: string | null; message: string };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { formatFailures, failureIndex } = require('../../scripts/jest-failures.js') as {
  formatFailures(tag: string, failures: Failure[], maxLines?: number): string;
  failureIndex(byGroup: Array<{ tag: string; failures: Failure[] }>): string;
};

const JEST = path.join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js');
const REPORTER = path.join(ROOT, 'scripts', 'jest-failures.js');

describe('the failed tests at the end of npm test', () => {
  let dir: string;
  let failures: Failure[];
  let exitCode: number | null;

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'jest-failures-'));
    writeFileSync(
      path.join(dir, 'gate.test.js'),
      [
        "describe('the coverage gate', () => {",
        "  it('accepts 80 %', () => expect(80).toBeGreaterThanOrEqual(80));",
        "  it('refuses a regression', () => expect({ pct: 79.9 }).toEqual({ pct: 81.2 }));",
        '});',
      ].join('\n'),
    );
    writeFileSync(path.join(dir, 'missing.test.js'), "require('./no-such-module');\nit('x', () => {});\n");
    writeFileSync(
      path.join(dir, 'cleanup.test.js'),
      "afterAll(() => { throw new Error('sandbox still running'); });\nit('y', () => {});\n",
    );
    writeFileSync(path.join(dir, 'fine.test.js'), "it('is fine', () => expect(1).toBe(1));\n");
    const out = path.join(dir, 'out', 'failures.json');
    const run = spawnSync(
      process.execPath,
      [
        JEST,
        `--rootDir=${dir}`,
        '--config={"testEnvironment":"node"}',
        '--coverage=false',
        '--reporters=default',
        `--reporters=${REPORTER}`,
        '--runInBand',
      ],
      { cwd: dir, encoding: 'utf8', env: { ...process.env, JEST_FAILURES_FILE: out } },
    );
    exitCode = run.status;
    failures = (JSON.parse(readFileSync(out, 'utf8')) as { failures: Failure[] }).failures;
  }, 60_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('records each failed test with its suite, full name and message, and nothing that passed', () => {
    expect(exitCode).toBe(1);
    const byTest = failures.filter((f) => f.test !== null);
    expect(byTest).toEqual([
      expect.objectContaining({ suite: 'gate.test.js', test: 'the coverage gate refuses a regression' }),
    ]);
    expect(byTest[0].message).toContain('"pct": 81.2');
    expect(byTest[0].message).toContain('"pct": 79.9');
    expect(byTest[0].message).not.toContain('\u001b['); // no colour codes in a plain log
  });

  it('records a suite that could not load and one whose afterAll failed, with the reason', () => {
    const bySuite = failures.filter((f) => f.test === null);
    expect(bySuite.map((f) => f.suite).sort()).toEqual(['cleanup.test.js', 'missing.test.js']);
    expect(bySuite.find((f) => f.suite === 'missing.test.js')?.message).toContain(
      "Cannot find module './no-such-module'",
    );
    expect(bySuite.find((f) => f.suite === 'cleanup.test.js')?.message).toContain('sandbox still running');
  });

  it('prints each under the group with the message, without the stack frames of jest and node', () => {
    const text = formatFailures('[sandbox]', failures);
    expect(text).toContain('[sandbox] ✕ gate.test.js › the coverage gate refuses a regression\n');
    expect(text).toContain('[sandbox] ✕ missing.test.js (the suite, outside its tests)\n');
    expect(text).toMatch(/"pct": 81\.2/);
    expect(text).toMatch(/at .*gate\.test\.js:3:/); // the test's own frame stays
    expect(text).not.toMatch(/node_modules|node:internal/);
  });

  it('cuts a long message to its first lines and says where the rest is', () => {
    const message = Array.from({ length: 50 }, (_, i) => `line ${i + 1}`).join('\n');
    const text = formatFailures('[rest]', [{ suite: 'a.test.ts', test: 'long', message }], 5);
    expect(text.split('\n').filter(Boolean)).toEqual([
      '[rest] ✕ a.test.ts › long',
      '    line 1',
      '    line 2',
      '    line 3',
      '    line 4',
      '    line 5',
      '    … 45 more lines: see this test in the log above',
    ]);
  });

  it('tests of one suite that failed alike (their beforeAll threw) show the message once; the very end lists every failed test by name', () => {
    // what the CI log of 3a94bdd ended with: seven tests, one host start error, only the last four visible
    const message = 'PipelineError: [DURABLE_HOST.START_FAILED] the host exited\n' + 'frame\n'.repeat(30);
    const slack = 'test/security/approvals-slack-modal.test.ts';
    const same = ['a', 'b', 'c'].map((t) => ({ suite: slack, test: `modal ${t}`, message }));
    const other = { suite: 'test/unit/x.test.ts', test: 'x', message: 'expected 1, got 2' };
    const text = formatFailures('[rest]', [...same, other], 5);
    expect(text.match(/DURABLE_HOST\.START_FAILED/g)).toHaveLength(1);
    expect(text).toContain(
      `[rest] ✕ ${slack} › modal a\n[rest] ✕ ${slack} › modal b\n[rest] ✕ ${slack} › modal c\n    (the same message for these 3 tests)\n`,
    );
    expect(text).toContain('[rest] ✕ test/unit/x.test.ts › x\n    expected 1, got 2\n');
    const index = failureIndex([
      { tag: '[sandbox]', failures: [{ suite: 'test/e2e/demo.test.ts', test: null, message: 'afterAll' }] },
      { tag: '[rest]', failures: [...same, other] },
    ]);
    expect(index.split('\n').filter(Boolean)).toEqual([
      '== 5 failed (3 suites):',
      '[sandbox] ✕ test/e2e/demo.test.ts (the suite, outside its tests)',
      `[rest] ✕ ${slack} › modal a`,
      `[rest] ✕ ${slack} › modal b`,
      `[rest] ✕ ${slack} › modal c`,
      '[rest] ✕ test/unit/x.test.ts › x',
    ]);
    expect(failureIndex([{ tag: '[rest]', failures: [] }])).toBe('');
  });
});
