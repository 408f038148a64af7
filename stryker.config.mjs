// @ts-check
/**
 * Mutation testing (issue #20): `npm run mutation`. Not part of `npm test` (a full run takes tens of
 * minutes on 2 cores). See docs/TEST_COVERAGE.md, "Mutation testing".
 *
 * Scope: the pure decisions that guard PROD, backups and personal data —
 *  - shared/domain/** (coverage gate, webhook rules, versions, approval tokens, retention, deploy plan
 *    and its retry flags, errors, PII verdict, refresh body validation, status view, Odoo.sh rules);
 *  - the approval gate's next wake and timer, and its judging of one decision (`nextWake`,
 *    `timerFireAt`, `judgeDecision`, `isRequester`: line ranges of functions/orchestrators/approval-gate.ts);
 *  - the deploy lane's rules (functions/orchestrators/deployLane.ts, a line range: `takeLaneEvent` and
 *    what it uses — take / supersede / duplicate, events seen again, the end-of-work token).
 * Only the unit tests run against each mutant (jest.unit.config.js), so every mutant is judged by
 * tests that need no service. Equivalent mutants are marked in the source with
 * `// Stryker disable next-line <mutator>: <reason>`; thresholds are never lowered to hide survivors.
 *
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  packageManager: 'npm',
  testRunner: 'jest',
  // enableFindRelatedTests: each mutant run loads only the unit test files that import the mutated
  // file (transitively) instead of all of them — jest's start-up was most of every run (the
  // whole scope took about 2½ h with it off, about 1½ h with it on: docs/TEST_COVERAGE.md)
  jest: { projectType: 'custom', configFile: 'jest.unit.config.js', enableFindRelatedTests: true },
  checkers: ['typescript'],
  // the checker compiles only the files in scope (and what they import), not the whole project
  tsconfigFile: 'tsconfig.stryker.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  coverageAnalysis: 'perTest',
  mutate: [
    'shared/domain/**/*.ts',
    // nextWake … timerFireAt, then judgeDecision + isRequester only (line ranges: keep them on those
    // functions when the file changes above them); the rest is orchestration only integration suites reach
    'functions/orchestrators/approval-gate.ts:43-60',
    'functions/orchestrators/approval-gate.ts:94-146',
    // the lane's rules (short … takeLaneEvent, a line range: keep it on them); its generator is orchestration
    'functions/orchestrators/deployLane.ts:125-261',
  ],
  // what the unit tests never read: not copied into the sandbox (faster start)
  ignorePatterns: [
    'dist',
    'coverage',
    '.data',
    '.tools',
    '.anon-build',
    'test-artifacts',
    'reports',
    'bench/results',
  ],
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  thresholds: { high: 90, low: 80, break: 80 },
  concurrency: 2,
  // generous: on a busy machine a slow run must not pass for an endless loop (each timeout restarts the runner)
  timeoutMS: 60000,
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
