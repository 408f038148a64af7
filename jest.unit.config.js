/**
 * The unit tests of the decisions in mutation scope (test/unit): what `npm run mutation` runs against
 * every mutant (StrykerJS). Unit tests only, so mutation testing never starts PostgreSQL, sshd, Azurite
 * or dockerd. The unit tests of machinery outside the scope (the Durable Task host's build, the queue,
 * the host's parts, settings, psql command lines) are left out: they take most of the suite's time and
 * judge none of the decisions — Stryker runs the whole list for every "static" mutant (a constant such
 * as a retry flag or a length cap), so each file here costs once per such mutant.
 * Same transform and module mapping as jest.config.js; no coverage collection or thresholds.
 */
const base = require('./jest.config.js');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  roots: ['<rootDir>/test/unit'],
  testPathIgnorePatterns: [
    '/node_modules/',
    '/test/unit/(config|durable-host|queue(-[a-z-]+)?|host-parts|pii-sql-scripts)\\.test\\.ts$',
  ],
  collectCoverage: false,
  coverageThreshold: undefined,
};
