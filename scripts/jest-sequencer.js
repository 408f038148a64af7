/* The order in which `npm test` runs its suites: by path, the same on every machine.
 *
 * jest's own order depends on its cache (suites that failed last time first, then the slowest): on a
 * fresh clone, with no cache, it runs the biggest files first instead. So CI (a fresh checkout) and the
 * machine the change was tested on ran the sandbox suites in different orders, and a failure that
 * depends on what ran before could not be reproduced. Each group runs one worker, so the order changes
 * nothing of the run's length. */
const Sequencer = require('@jest/test-sequencer').default;

class PathOrder extends Sequencer {
  /** @param {Array<{ path: string }>} tests */
  sort(tests) {
    return [...tests].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }
}

module.exports = PathOrder;
