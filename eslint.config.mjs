// @ts-check
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'coverage/**',
      'node_modules/**',
      '.data/**',
      'bench/results/**',
      'test-artifacts/**',
      '**/*.js',
      '**/*.mjs',
      '**/*.cjs',
    ],
  },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    // Orchestrators are deterministic generators: no Node builtins, no SDKs, no ssh2, no adapters.
    files: ['functions/orchestrators/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({
            name,
            message: 'Orchestrators may not import Node builtins (no I/O in orchestrators).',
          })),
          patterns: [
            {
              group: ['@azure/*', '!@azure/functions', 'ssh2', '@octokit/*', 'better-sqlite3', 'azurite'],
              message: 'Orchestrators may not import SDKs.',
            },
            {
              group: ['**/adapters/**', '**/adapters'],
              message: 'Orchestrators may not import adapters; call activities.',
            },
            {
              group: ['**/config', '**/config.js', '**/config.ts'],
              message: 'Orchestrators may not read configuration; pass it in the input.',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'Date', message: 'Use context.df.currentUtcDateTime.' },
        { name: 'setTimeout', message: 'Use context.df.createTimer.' },
        { name: 'fetch', message: 'No I/O in orchestrators.' },
        { name: 'process', message: 'No environment reads in orchestrators.' },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'Not deterministic; use context.df.newGuid.' },
      ],
    },
  },
);
