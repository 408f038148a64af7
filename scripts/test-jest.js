#!/usr/bin/env node
/* The jest part of `npm test`: every suite, with coverage, in two jest processes side by side.
 *
 *  - "sandbox": the suites that start the sandbox VMs (scripts/test-groups.js). The sandbox is one per
 *    machine, so they run one after another anyway; with one jest and two workers, a worker that picked
 *    a second sandbox suite sat on the sandbox lock (a fresh-clone CI run once waited 335 s and 595 s
 *    that way) while the other suites queued behind it.
 *  - "rest": everything else, meanwhile.
 *
 * Each runs one worker (a real worker process, as before: jest kills it at the end, so a suite that
 * leaks a handle cannot hang the run), writes its coverage to coverage/.<group>/, and this script merges
 * both into coverage/ (coverage-final.json, coverage-summary.json, lcov) for scripts/coverage-gate.js,
 * which enforces the 80 % minimum and the baseline on the merged numbers. Exit code: 1 when either jest
 * failed (both always run to the end), or when the coverage could not be merged.
 *
 * Arguments: a path fragment (`test/unit`, `docker-files`) keeps only the suites whose path contains one
 * of them (both groups; coverage is then that of those suites, so the gate will likely fail); anything
 * starting with `-` goes to both jest processes (e.g. `--silent`). */
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { groupTests } = require('./test-groups');
const { formatFailures, failureIndex } = require('./jest-failures');

const root = path.resolve(__dirname, '..');
// jest's package exports only its API; its bin sits beside package.json
const jestBin = path.join(
  path.dirname(require.resolve('jest/package.json', { paths: [root] })),
  'bin',
  'jest.js',
);
const coverageDir = path.join(root, 'coverage');

/** @param {string} tag @param {NodeJS.ReadableStream} from @param {NodeJS.WritableStream} to */
function prefixLines(tag, from, to) {
  let rest = '';
  from.setEncoding('utf8');
  from.on('data', (chunk) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop() ?? '';
    if (lines.length) to.write(lines.map((l) => `${tag} ${l}\n`).join(''));
  });
  from.on('end', () => {
    if (rest) to.write(`${tag} ${rest}\n`);
  });
}

/**
 * @param {string} name @param {string[]} files @param {string[]} extra
 * @returns {Promise<{name: string, code: number, seconds: number}>}
 */
function runJest(name, files, extra) {
  const t0 = Date.now();
  const args = [
    jestBin,
    '--coverage',
    `--coverageDirectory=${path.join(coverageDir, `.${name}`)}`,
    '--coverageReporters=json',
    // the minimum is checked on the merged coverage (one group alone covers less)
    '--coverageThreshold={}',
    '--maxWorkers=1',
    // with one worker jest would run the suites in its own process; a memory limit makes it use a worker
    '--workerIdleMemoryLimit=4GB',
    // by path, whatever jest's cache says (scripts/jest-sequencer.js)
    `--testSequencer=${path.join(__dirname, 'jest-sequencer.js')}`,
    '--reporters=default',
    `--reporters=${path.join(__dirname, 'jest-failures.js')}`,
    ...extra,
    '--runTestsByPath',
    ...files,
  ];
  const tag = `[${name}]`;
  process.stdout.write(`${tag} jest: ${files.length} suites\n`);
  const child = spawn(process.execPath, args, {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    // each jest process (and what it spawns) chooses local ports in its own half of the room freePort
    // uses (local/azurite.ts): the sandbox's Odoo ports are never what the other process's servers pick
    env: {
      ...process.env,
      JEST_FAILURES_FILE: failuresFile(name),
      LOCAL_PORT_SLICE: name === 'sandbox' ? '0/2' : '1/2',
    },
  });
  prefixLines(tag, child.stdout, process.stdout);
  prefixLines(tag, child.stderr, process.stderr);
  const stop = (signal) => child.kill(signal);
  process.on('SIGINT', stop).on('SIGTERM', stop);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      const seconds = Math.round((Date.now() - t0) / 1000);
      resolve({ name, code: code ?? (signal ? 128 : 1), seconds });
    });
  });
}

/** @param {string} name */
const failuresFile = (name) => path.join(coverageDir, `.${name}`, 'failures.json');

/** What failed in a group, as its jest's reporter wrote it; a jest that wrote nothing is a failure too. */
function failuresOf(name, code) {
  const f = failuresFile(name);
  if (fs.existsSync(f)) return JSON.parse(fs.readFileSync(f, 'utf8')).failures;
  if (code === 0) return [];
  return [{ suite: '(jest)', test: null, message: `jest "${name}" ended (exit ${code}) before its results` }];
}

/** Merge the groups' coverage-final.json into coverage/ (json, json-summary, lcov, text-summary). */
function mergeCoverage(names) {
  const libCoverage = require('istanbul-lib-coverage');
  const libReport = require('istanbul-lib-report');
  const reports = require('istanbul-reports');
  const map = libCoverage.createCoverageMap({});
  for (const n of names) {
    const f = path.join(coverageDir, `.${n}`, 'coverage-final.json');
    if (!fs.existsSync(f))
      throw new Error(`${path.relative(root, f)} is missing: jest of "${n}" wrote no coverage`);
    map.merge(JSON.parse(fs.readFileSync(f, 'utf8')));
  }
  const context = libReport.createContext({ dir: coverageDir, coverageMap: map });
  for (const r of ['json', 'json-summary', 'lcov', 'text-summary']) reports.create(r).execute(context);
}

async function main() {
  const extra = process.argv.slice(2).filter((a) => a.startsWith('-'));
  const only = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const listed = execFileSync(process.execPath, [jestBin, '--listTests'], { cwd: root, encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim())
    .filter((f) => f && (!only.length || only.some((o) => f.includes(o))))
    .sort();
  if (!listed.length)
    throw new Error(
      `jest --listTests found no test files${only.length ? ` matching ${only.join(', ')}` : ''}`,
    );
  const { sandbox, rest } = groupTests(listed, { testRoot: path.join(root, 'test') });
  fs.rmSync(coverageDir, { recursive: true, force: true });
  const groups = [
    ['sandbox', sandbox],
    ['rest', rest],
  ].filter(([, files]) => files.length > 0);
  const results = await Promise.all(groups.map(([name, files]) => runJest(name, files, extra)));
  for (const r of results)
    process.stdout.write(
      `jest "${r.name}": ${r.code === 0 ? 'passed' : `FAILED (exit ${r.code})`} in ${r.seconds} s\n`,
    );
  let merged;
  try {
    mergeCoverage(results.map((r) => r.name));
  } catch (err) {
    merged = err;
  }
  // last, so that the end of a long log says which tests failed
  const byGroup = results.map((r) => ({ tag: `[${r.name}]`, failures: failuresOf(r.name, r.code) }));
  const failed = byGroup.flatMap((g) => (g.failures.length ? [formatFailures(g.tag, g.failures)] : []));
  if (failed.length) process.stdout.write(`\n== failed tests\n${failed.join('')}\n${failureIndex(byGroup)}`);
  if (merged) throw merged;
  return results.every((r) => r.code === 0) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`test-jest: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
