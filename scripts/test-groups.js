/* Which jest suites need the sandbox VMs (test/support/sandbox.ts). The sandbox is one per machine (one
 * Docker engine; suites take turns on a file lock), so those suites run one after another whatever jest
 * does; scripts/test-jest.js runs them in a jest of their own beside one that runs everything else,
 * instead of letting a worker sit on the lock while work waits.
 *
 * A suite needs the sandbox when it, or a module under test/ it imports (however deep), calls
 * startSandbox(…) or describeSandbox(…). test/support/sandbox.ts itself is not followed: importing one
 * of its constants does not start anything. */
const fs = require('node:fs');
const path = require('node:path');

const CALL = /(?<!function\s+)\b(?:startSandbox|describeSandbox)\s*\(/;
// `from './x'`, `import './x'`, `require('./x')`, `import('./x')`: relative specifiers only
const IMPORT = /(?:\bfrom\s*|\bimport\s*|\brequire\s*\(\s*|\bimport\s*\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g;
const EXTENSIONS = ['', '.ts', '.js', '/index.ts', '/index.js'];

/** @param {string} from @param {string} spec */
function resolveLocal(from, spec) {
  const base = path.resolve(path.dirname(from), spec);
  for (const ext of EXTENSIONS) {
    const f = base + ext;
    if (fs.existsSync(f) && fs.statSync(f).isFile()) return f;
  }
  return undefined;
}

/**
 * @param {string[]} files absolute paths of the test files
 * @param {{ testRoot: string }} opts only modules under testRoot are followed
 * @returns {{ sandbox: string[], rest: string[] }}
 */
function groupTests(files, { testRoot }) {
  const root = path.resolve(testRoot) + path.sep;
  /** what one file says: whether it calls the sandbox, and the modules under test/ it imports */
  /** @type {Map<string, { calls: boolean, deps: string[] }>} */
  const parsed = new Map();
  /** @param {string} file */
  const parse = (file) => {
    let p = parsed.get(file);
    if (!p) {
      const text = fs.readFileSync(file, 'utf8');
      const deps = [];
      for (const m of text.matchAll(IMPORT)) {
        const dep = resolveLocal(file, m[1]);
        if (dep && dep.startsWith(root) && path.basename(dep) !== 'sandbox.ts') deps.push(dep);
      }
      p = { calls: CALL.test(text), deps };
      parsed.set(file, p);
    }
    return p;
  };
  /** @param {string} file whether it or anything it reaches calls the sandbox */
  const needs = (file) => {
    const seen = new Set([file]);
    const todo = [file];
    while (todo.length) {
      const p = parse(todo.pop());
      if (p.calls) return true;
      for (const d of p.deps)
        if (!seen.has(d)) {
          seen.add(d);
          todo.push(d);
        }
    }
    return false;
  };
  const sandbox = [];
  const rest = [];
  for (const f of files) (needs(f) ? sandbox : rest).push(f);
  return { sandbox, rest };
}

module.exports = { groupTests };
