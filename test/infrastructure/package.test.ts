/**
 * The deployment package, built by the one recipe the workflow and azd use (scripts/package.js),
 * zipped, unpacked elsewhere, and loaded the way the Functions worker loads it: package.json `main`
 * globbed inside the package, `@azure/functions-core` supplied by the same shim the local host uses,
 * modules resolved from the package's own node_modules only (it is unpacked outside the checkout).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';

const ROOT = path.resolve(__dirname, '..', '..');

function walk(dir: string, skip: (p: string) => boolean = () => false): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    if (skip(p)) return [];
    return statSync(p).isDirectory() ? walk(p, skip) : [p];
  });
}

let tmp = '';
let unpacked = '';
let indexed: {
  functions: string[];
  sqlDir: string;
  version: string;
  neutralize: boolean;
  resolvedFrom: string[];
};

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'package-test-'));
  execFileSync(
    process.execPath,
    [path.join(ROOT, 'scripts', 'package.js'), '--out', path.join(tmp, 'out'), '--zip'],
    { cwd: ROOT, stdio: 'pipe', timeout: 900_000 },
  );
  unpacked = path.join(tmp, 'site', 'wwwroot');
  execFileSync('mkdir', ['-p', unpacked]);
  execFileSync('unzip', ['-q', path.join(tmp, 'out', 'app.zip'), '-d', unpacked]);
  // The worker's view: main glob inside the package; only @azure/functions-core comes from outside
  // (the worker injects it; here the local host's shim, as local/registrations.ts installs it).
  const probe = `
    const path = require('node:path');
    const fs = require('node:fs');
    const Module = require('node:module');
    const core = require(${JSON.stringify(path.join(ROOT, 'dist', 'local', 'functions-core.js'))});
    const load = Module._load;
    const resolvedFrom = new Set();
    Module._load = function (request, parent, isMain) {
      if (request === '@azure/functions-core') return core;
      const out = load.call(this, request, parent, isMain);
      try { const f = Module._resolveFilename(request, parent, isMain); if (path.isAbsolute(f)) resolvedFrom.add(f.startsWith(process.env.APP_ROOT) ? 'package' : f); } catch {}
      return out;
    };
    const root = process.env.APP_ROOT;
    const main = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).main;
    const m = /^(.*?)\\*\\*\\/\\*(\\.js)$/.exec(main);
    if (!m) throw new Error('unexpected main glob ' + main);
    const walk = (d) => fs.readdirSync(d).flatMap((f) => { const p = path.join(d, f); return fs.statSync(p).isDirectory() ? walk(p) : [p]; });
    for (const file of walk(path.join(root, m[1])).filter((f) => f.endsWith(m[2])).sort()) require(file);
    const { SQL_DIR } = require(path.join(root, 'dist/shared/adapters/sql-scripts.js'));
    const { pipelineVersion } = require(path.join(root, 'dist/shared/version.js'));
    process.stdout.write(JSON.stringify({
      functions: core.registeredFunctions().map((f) => f.metadata.name).sort(),
      sqlDir: SQL_DIR,
      neutralize: fs.existsSync(path.join(SQL_DIR, 'neutralize.sql')),
      version: pipelineVersion(),
      resolvedFrom: [...resolvedFrom].filter((f) => !f.startsWith('node:')),
    }));
  `;
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'package-cwd-'));
  // NODE_PATH cleared and cwd elsewhere: nothing outside the package can fill a gap
  const out = execFileSync(process.execPath, ['-e', probe], {
    cwd,
    env: { PATH: process.env.PATH, APP_ROOT: unpacked, NODE_PATH: '' },
    timeout: 300_000,
  });
  rmSync(cwd, { recursive: true, force: true });
  indexed = JSON.parse(out.toString('utf8')) as typeof indexed;
}, 1_200_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('deployment package (scripts/package.js)', () => {
  it('indexes every function from the unpacked package, as the worker would, with only the package for modules', () => {
    // the same registrations the local host serves from this checkout's build
    const here = execFileSync(
      process.execPath,
      [
        '-e',
        `const r = require(${JSON.stringify(path.join(ROOT, 'dist', 'local', 'registrations.js'))}); process.stdout.write(JSON.stringify(r.loadFunctions(${JSON.stringify(path.join(ROOT, 'dist', 'functions'))}).map((f) => f.name).sort()))`,
      ],
      { cwd: ROOT },
    ).toString();
    const expected = JSON.parse(here) as string[];
    expect(expected.length).toBeGreaterThan(50);
    expect(indexed.functions).toEqual(expected);
    expect(indexed.resolvedFrom).toEqual(['package']);
  });

  it("reads sql/ and VERSION through the code's own paths, inside the package", () => {
    expect(indexed.sqlDir.startsWith(unpacked)).toBe(true);
    expect(indexed.neutralize).toBe(true);
    expect(existsSync(path.join(indexed.sqlDir, 'anonymize.sql'))).toBe(true);
    expect(indexed.version).toBe(readFileSync(path.join(ROOT, 'VERSION'), 'utf8').trim());
    expect(indexed.version).not.toBe('0.0.0');
  });

  it('holds no dev dependency and no TypeScript source', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; devOptional?: boolean }>;
    };
    const modules = path.join(unpacked, 'node_modules');
    const entries = Object.entries(lock.packages).filter(([key]) => key.startsWith('node_modules/'));
    const shipped = entries.filter(([key]) => existsSync(path.join(unpacked, key, 'package.json')));
    expect(shipped.length).toBeGreaterThan(50);
    expect(shipped.filter(([, e]) => e.dev || e.devOptional).map(([key]) => key)).toEqual([]);
    // and nothing that the lock does not list (a stray copy of the checkout's node_modules)
    const top = readdirSync(modules)
      .flatMap((n) => (n.startsWith('@') ? readdirSync(path.join(modules, n)).map((m) => `${n}/${m}`) : [n]))
      .filter((n) => !n.startsWith('.'));
    expect(top.filter((n) => !lock.packages[`node_modules/${n}`])).toEqual([]);
    // dev-only packages (some dev dependencies, like @types/node, are also needed by a production one: the lock decides)
    for (const name of [
      'azurite',
      'better-sqlite3',
      'typescript',
      'jest',
      'ts-jest',
      'eslint',
      'prettier',
      'playwright-core',
    ]) {
      expect({
        name,
        inDevDependencies: name in pkg.devDependencies,
        shipped: existsSync(path.join(modules, name)),
      }).toEqual({ name, inDevDependencies: true, shipped: false });
    }
    for (const name of Object.keys(pkg.dependencies))
      expect({ name, shipped: existsSync(path.join(modules, name)) }).toEqual({ name, shipped: true });
    // local/ only: never a production dependency
    expect(pkg.dependencies).not.toHaveProperty('azurite');
    expect(pkg.dependencies).not.toHaveProperty('better-sqlite3');
    const ts = walk(unpacked, (p) => p === modules).filter((f) => /\.(ts|tsx)$/.test(f));
    expect(ts.map((f) => path.relative(unpacked, f))).toEqual([]);
    expect(existsSync(path.join(unpacked, 'dist', 'local'))).toBe(false);
    expect(existsSync(path.join(unpacked, 'host.json'))).toBe(true);
  });

  it('the workflow and azd build the package with this script (azd: no remote build)', () => {
    const workflow = readFileSync(path.join(ROOT, '.github', 'workflows', 'deploy.yml'), 'utf8');
    expect(workflow).toMatch(/node scripts\/package\.js[^\n]*--zip/);
    expect(workflow).not.toMatch(/npm prune/);
    const azure = parseYaml(readFileSync(path.join(ROOT, 'azure.yaml'), 'utf8')) as {
      services: { api: { remoteBuild?: boolean; dist?: string; language: string } };
    };
    expect(azure.services.api.remoteBuild).toBe(false);
    expect(azure.services.api.dist).toBe('.package/app');
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    // azd's npm framework runs `npm run package` and then copies `dist`
    expect(pkg.scripts.package).toBe('node scripts/package.js --no-build');
    expect(readFileSync(path.join(ROOT, 'docs', 'INFRASTRUCTURE.md'), 'utf8')).toContain(
      'scripts/package.js',
    );
  });
});
