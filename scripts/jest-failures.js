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

/**
 * @param {string} tag the group's name, e.g. "[sandbox]"
 * @param {{ suite: string, test: string | null, message: string }[]} failures
 * @param {number} [maxLines] lines of each message kept
 * @returns {string}
 */
function formatFailures(tag, failures, maxLines = 20) {
  return failures
    .map((f) => {
      const lines = f.message.split('\n').filter((l) => l.trim() !== '' && !LIBRARY_FRAME.test(l));
      const kept = lines.slice(0, maxLines).map((l) => `    ${l}`);
      if (lines.length > maxLines)
        kept.push(`    … ${lines.length - maxLines} more lines: see this test in the log above`);
      return `${tag} ✕ ${f.suite}${f.test ? ` › ${f.test}` : ' (the suite, outside its tests)'}\n${kept.join('\n')}\n`;
    })
    .join('');
}

module.exports = FailuresReporter;
module.exports.formatFailures = formatFailures;
