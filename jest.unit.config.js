/**
 * The unit tests alone (test/unit): what `npm run mutation` runs for every mutant (StrykerJS), so that
 * mutation testing stays fast and never starts PostgreSQL, sshd, Azurite or dockerd. Same transform and
 * module mapping as jest.config.js; no coverage collection or thresholds (Stryker measures per test).
 */
const base = require('./jest.config.js');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  roots: ['<rootDir>/test/unit'],
  collectCoverage: false,
  coverageThreshold: undefined,
};
