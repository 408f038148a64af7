#!/usr/bin/env node
/**
 * Builds the function app's deployment package: the one recipe used by the deploy workflow
 * (.github/workflows/deploy.yml), by azd (`npm run package`, azure.yaml `dist: .package/app`,
 * `remoteBuild: false`) and by test/infrastructure/package.test.ts.
 *
 *   node scripts/package.js [--out DIR] [--zip] [--no-build]
 *
 * DIR (default .package) receives `app/` (the unpacked package) and, with --zip, `app.zip`. The package
 * holds what the Functions worker and the code read at run time, nothing else:
 *   dist/functions, dist/shared   compiled JavaScript (package.json `main` globs dist/functions)
 *   host.json, package.json, package-lock.json
 *   sql/                          refresh scripts (shared/adapters/sql-scripts.ts SQL_DIR)
 *   VERSION                       the pipeline's version (shared/version.ts, /api/health)
 *   node_modules                  production dependencies only, copied from this checkout's
 *                                 node_modules as package-lock.json lists them (no network)
 * No TypeScript source and no dev dependency: the app is built here, never on the server.
 */
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');

function parseArgs(argv) {
  const opts = { out: path.join(ROOT, '.package'), zip: false, build: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out') opts.out = path.resolve(argv[++i] ?? '');
    else if (a === '--zip') opts.zip = true;
    else if (a === '--no-build') opts.build = false;
    else throw new Error(`package: unknown argument ${a} (use --out DIR, --zip, --no-build)`);
  }
  return opts;
}

function copy(from, to, filter) {
  fs.cpSync(from, to, { recursive: true, dereference: false, verbatimSymlinks: true, filter });
}

/** Paths (node_modules/...) of the production packages of package-lock.json that are installed. */
function productionPackages() {
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  if (!lock.packages)
    throw new Error('package: package-lock.json has no "packages" (lockfileVersion 2 or later needed)');
  const keys = Object.entries(lock.packages)
    .filter(
      ([key, entry]) => key.startsWith('node_modules/') && !entry.dev && !entry.devOptional && !entry.link,
    )
    .map(([key, entry]) => ({ key, optional: !!entry.optional }));
  const missing = [];
  const present = [];
  for (const { key, optional } of keys) {
    if (fs.existsSync(path.join(ROOT, key))) present.push(key);
    // optional dependencies for other platforms are legitimately absent
    else if (!optional) missing.push(key);
  }
  if (missing.length)
    throw new Error(`package: not installed (run npm ci first): ${missing.slice(0, 10).join(', ')}`);
  // a nested package is copied with its parent
  return present.filter(
    (key) => !present.some((other) => other !== key && key.startsWith(`${other}/node_modules/`)),
  );
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.build) execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const app = path.join(opts.out, 'app');
  fs.rmSync(app, { recursive: true, force: true });
  fs.mkdirSync(app, { recursive: true });

  for (const dir of ['functions', 'shared']) {
    const from = path.join(ROOT, 'dist', dir);
    if (!fs.existsSync(from))
      throw new Error(`package: ${path.relative(ROOT, from)} is missing (npm run build)`);
    // compiled JavaScript only (no source maps of tests, no declaration files)
    copy(
      from,
      path.join(app, 'dist', dir),
      (src) => fs.statSync(src).isDirectory() || (src.endsWith('.js') && !src.endsWith('.test.js')),
    );
  }
  for (const file of ['host.json', 'package.json', 'package-lock.json', 'VERSION'])
    fs.copyFileSync(path.join(ROOT, file), path.join(app, file));
  copy(path.join(ROOT, 'sql'), path.join(app, 'sql'), (src) => !src.endsWith('.md'));

  const modules = productionPackages();
  for (const key of modules) copy(path.join(ROOT, key), path.join(app, key));

  // what the worker loads must be there
  const main = String(pkg.main ?? '');
  if (!main.startsWith('dist/functions/'))
    throw new Error(`package: package.json main "${main}" must glob dist/functions`);

  if (opts.zip) {
    const zip = path.join(opts.out, 'app.zip');
    fs.rmSync(zip, { force: true });
    // -y keeps symbolic links as links; -X leaves out extra file attributes
    execFileSync('zip', ['-qryX', zip, '.'], { cwd: app, stdio: 'inherit' });
    process.stdout.write(
      `package: ${path.relative(process.cwd(), zip) || zip} (${modules.length} production packages)\n`,
    );
  } else {
    process.stdout.write(
      `package: ${path.relative(process.cwd(), app) || app} (${modules.length} production packages)\n`,
    );
  }
}

try {
  main();
} catch (err) {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
