/* A jest reporter beside the default one: at the end of a run it writes what failed (each failed test's
 * suite, full name and message; each suite that could not run and why) to the JSON file named by the
 * JEST_FAILURES_FILE environment variable. scripts/test-jest.js prints it again after both jest processes
 * have ended, so that whoever reads only the end of a long CI log (hundreds of suites' output before it)
 * still sees which test failed and how.
 *
 * formatFailures(…) is that printout: one heading per failed test, then the first lines of its message. */
const fs = require('node:fs');
const path = require('node:path');

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[A-Za-z]/g;

// stack frames in jest's own code and node's: the test's and the product's frames are the ones to read
const LIBRARY_FRAME = /^\s*at .*(node_modules|node:internal|\(<anonymous>\))/;

/** @param {string} s */
const plain = (s) => s.replace(ANSI, '');

class FailuresReporter {
  /** @param {{ rootDir: string }} globalConfig */
  constructor(globalConfig) {
    this.rootDir = globalConfig.rootDir;
  }

  /** @param {unknown} _contexts @param {import('@jest/test-result').AggregatedResult} results */
  onRunComplete(_contexts, results) {
    const file = process.env.JEST_FAILURES_FILE;
    if (!file) return;
    /** @type {{ suite: string, test: string | null, message: string }[]} */
    const failures = [];
    for (const suite of results.testResults) {
      const rel = path.relative(this.rootDir, suite.testFilePath);
      if (suite.testExecError || (suite.failureMessage && !suite.numFailingTests))
        failures.push({
          suite: rel,
          test: null,
          message: plain(
            suite.failureMessage || suite.testExecError?.stack || suite.testExecError?.message || '',
          ),
        });
      for (const t of suite.testResults)
        if (t.status === 'failed')
          failures.push({ suite: rel, test: t.fullName, message: plain(t.failureMessages.join('\n')) });
    }
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify({ failures }, null, 2));
  }
}

/** One failed test's line: `[group] ✕ suite › test` (a suite that failed outside its tests says so). */
const heading = (/** @type {string} */ tag, /** @type {string} */ suite, /** @type {string | null} */ test) =>
  `${tag} ✕ ${suite}${test ? ` › ${test}` : ' (the suite, outside its tests)'}\n`;

/**
 * @param {string} tag the group's name, e.g. "[sandbox]"
 * @param {{ suite: string, test: string | null, message: string }[]} failures
 * @param {number} [maxLines] lines of each message kept
 * @returns {string}
 */
function formatFailures(tag, failures, maxLines = 20) {
  // tests of one suite that failed with the same message (a beforeAll that threw fails every test of the
  // suite) are listed together, the message once
  /** @type {Map<string, { suite: string, tests: (string | null)[], message: string }>} */
  const groups = new Map();
  for (const f of failures) {
    const key = JSON.stringify([f.suite, f.test === null, f.message]);
    const g = groups.get(key);
    if (g) g.tests.push(f.test);
    else groups.set(key, { suite: f.suite, tests: [f.test], message: f.message });
  }
  return [...groups.values()]
    .map((g) => {
      const lines = g.message.split('\n').filter((l) => l.trim() !== '' && !LIBRARY_FRAME.test(l));
      const kept = lines.slice(0, maxLines).map((l) => `    ${l}`);
      if (lines.length > maxLines)
        kept.push(`    … ${lines.length - maxLines} more lines: see this test in the log above`);
      const heads = g.tests.map((t) => heading(tag, g.suite, t));
      const same = heads.length > 1 ? `    (the same message for these ${heads.length} tests)\n` : '';
      return `${heads.join('')}${same}${kept.join('\n')}\n`;
    })
    .join('');
}

/**
 * The last lines of the log: how many failed, then one line per failed test (names only), so that even
 * a reader of only the log's last lines knows every failed test.
 * @param {{ tag: string, failures: { suite: string, test: string | null }[] }[]} byGroup
 * @returns {string}
 */
function failureIndex(byGroup) {
  const all = byGroup.flatMap((g) => g.failures.map((f) => ({ ...f, tag: g.tag })));
  if (!all.length) return '';
  const suites = new Set(all.map((f) => `${f.tag} ${f.suite}`)).size;
  const head = `== ${all.length} failed (${suites} ${suites === 1 ? 'suite' : 'suites'}):\n`;
  return head + all.map((f) => heading(f.tag, f.suite, f.test)).join('');
}

module.exports = FailuresReporter;
module.exports.formatFailures = formatFailures;
module.exports.failureIndex = failureIndex;
