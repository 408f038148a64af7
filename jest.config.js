/** @type {import('jest').Config} */
// ESM-only packages (octokit and its dependencies) are transformed to CommonJS by ts-jest.
const esmPackages = [
  '@octokit',
  'universal-user-agent',
  'before-after-hook',
  'fast-content-type-parse',
  'content-type',
  'toad-cache',
  'universal-github-app-jwt',
  'json-with-bigint',
];
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test', '<rootDir>/shared', '<rootDir>/functions', '<rootDir>/local'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.[tj]s$': [
      'ts-jest',
      {
        isolatedModules: true,
        tsconfig: {
          allowJs: true,
          module: 'commonjs',
          moduleResolution: 'node',
          esModuleInterop: true,
          sourceMap: true,
        },
      },
    ],
  },
  transformIgnorePatterns: [`/node_modules/(?!(${esmPackages.join('|')})/)`],
  testEnvironmentOptions: { customExportConditions: ['node', 'require', 'default'] },
  moduleNameMapper: {
    '^@azure/functions-core$': '<rootDir>/local/functions-core.ts',
    // exports only an `import` condition under `node` (no `require`/`default`) that jest's resolver could pick
    '^@octokit/webhooks-methods$': '<rootDir>/node_modules/@octokit/webhooks-methods/dist-node/index.js',
  },
  collectCoverageFrom: [
    'functions/**/*.ts',
    'shared/**/*.ts',
    'local/**/*.ts',
    '!**/*.test.ts',
    '!**/*.d.ts',
    // entry points: tests run them as child processes (`npm start`'s main.js in the crash tests,
    // `npm run demo -- --once` in test/e2e/demo.test.ts), where jest cannot collect coverage
    '!local/main.ts',
    '!local/demo.ts',
  ],
  coverageReporters: ['text-summary', 'json-summary', 'lcov'],
  coverageThreshold: { global: { lines: 80, statements: 80 } },
  testTimeout: 60000,
  maxWorkers: 2,
};
