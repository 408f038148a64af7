/**
 * `npm test` runs jest as two processes (scripts/test-jest.js): the suites that start the sandbox VMs,
 * one after another, beside everything else. What decides the split (scripts/test-groups.js) must put
 * every suite in exactly one group, and every suite that starts the sandbox — directly or through a
 * rig it imports — in the sandbox group: two of them in the other group would run side by side and
 * one would sit on the sandbox lock, which is what the split is for.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './bicep-cli';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { groupTests } = require('../../scripts/test-groups.js') as {
  groupTests(files: string[], opts: { testRoot: string }): { sandbox: string[]; rest: string[] };
};

// the fixtures' calls, spelled so that this file itself does not read as one that starts the sandbox
const START = ['start', 'Sandbox'].join('');
const DESCRIBE = ['describe', 'Sandbox'].join('');

const rel = (files: string[]) => files.map((f) => path.relative(ROOT, f)).sort();

describe('the jest groups of npm test', () => {
  const listed = execFileSync(
    process.execPath,
    [path.join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js'), '--listTests'],
    { cwd: ROOT, encoding: 'utf8' },
  )
    .split('\n')
    .filter(Boolean);
  const groups = groupTests(listed, { testRoot: path.join(ROOT, 'test') });

  it('every suite jest finds runs in exactly one group', () => {
    expect(listed.length).toBeGreaterThan(100);
    expect([...rel(groups.sandbox), ...rel(groups.rest)].sort()).toEqual(rel(listed));
    expect(groups.sandbox.filter((f) => groups.rest.includes(f))).toEqual([]);
  });

  it('the sandbox group is every suite that starts the sandbox, directly or through the modules it imports', () => {
    // what a reader checks by hand: the suites that call it, and the ones that import a rig that does
    const direct = listed.filter((f) => /\b(describeSandbox|startSandbox)\(/.test(readFileSync(f, 'utf8')));
    expect(direct.length).toBeGreaterThan(3);
    for (const f of direct) expect(rel(groups.sandbox)).toContain(path.relative(ROOT, f));
    // the deploy suites on the sandbox, by name (reaching it through a rig is the scratch tree's case below)
    expect(rel(groups.sandbox)).toEqual(
      expect.arrayContaining([
        'test/e2e/deploy-uat.test.ts',
        'test/e2e/deploy-uat-crash.test.ts',
        'test/e2e/deploy-prod.test.ts',
        'test/e2e/refresh.test.ts',
      ]),
    );
    // importing a constant of test/support/sandbox.ts starts nothing
    expect(rel(groups.rest)).toEqual(
      expect.arrayContaining([
        'test/integration/demo-prerequisites.test.ts',
        'test/integration/odoo-ops-tmp.test.ts',
      ]),
    );
  });

  describe('on a scratch tree', () => {
    let dir: string;
    const write = (name: string, text: string) => {
      const f = path.join(dir, 'test', name);
      mkdirSync(path.dirname(f), { recursive: true });
      writeFileSync(f, text);
      return f;
    };
    beforeEach(() => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'test-groups-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('follows imports however deep and through cycles, only under test/, and not into sandbox.ts', () => {
      write(
        'support/sandbox.ts',
        `export async function ${START}(o = {}) {}\nexport const SANDBOX_CACHE = 1;\n`,
      );
      write(
        'e2e/rig.ts',
        `import { ${START} } from '../support/sandbox';\nexport const go = () => ${START}({});\n`,
      );
      write('e2e/matrix.ts', "import { helper } from './cycle';\nexport { helper };\n");
      write('e2e/cycle.ts', "import './matrix';\nimport { go } from './rig';\nexport const helper = go;\n");
      write('support/other.ts', "export const x = require('./plain');\n");
      write('support/plain.js', 'module.exports = 1;\n');
      // a module outside test/ that names the call is not followed
      mkdirSync(path.join(dir, 'local'), { recursive: true });
      writeFileSync(path.join(dir, 'local', 'demo.ts'), `${START}({});\n`);
      const deep = write(
        'e2e/deep.test.ts',
        "import { helper } from './matrix';\nit('x', () => helper());\n",
      );
      const looped = write('e2e/looped.test.ts', "import './cycle';\n");
      const direct = write(
        'e2e/direct.test.ts',
        `import { ${DESCRIBE} } from '../support/sandbox';\n${DESCRIBE}('x', () => {});\n`,
      );
      const constant = write(
        'unit/constant.test.ts',
        "import { SANDBOX_CACHE } from '../support/sandbox';\nimport '../support/other';\n",
      );
      const outside = write('unit/outside.test.ts', "import '../../local/demo';\n");
      const dynamic = write('unit/dynamic.test.ts', "const r = () => import('../e2e/rig');\n");
      const g = groupTests([deep, looped, direct, constant, outside, dynamic], {
        testRoot: path.join(dir, 'test'),
      });
      expect(g.sandbox.map((f) => path.basename(f)).sort()).toEqual([
        'deep.test.ts',
        'direct.test.ts',
        'dynamic.test.ts',
        'looped.test.ts',
      ]);
      expect(g.rest.map((f) => path.basename(f)).sort()).toEqual(['constant.test.ts', 'outside.test.ts']);
    });
  });
});

describe('the order of the suites in npm test (scripts/jest-sequencer.js)', () => {
  it('is by path, not by size or by the cache of an earlier run, so that CI runs what ran here', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'jest-order-'));
    try {
      const log = path.join(dir, 'order.log');
      // sizes in the opposite order of the paths: jest's own order on a fresh clone is the biggest first
      const body = (name: string, padding: number) =>
        `require('fs').appendFileSync(${JSON.stringify(log)}, '${name}\\n');\n${'// pad\n'.repeat(padding)}it('${name}', () => {});\n`;
      writeFileSync(path.join(dir, 'a.test.js'), body('a', 1));
      writeFileSync(path.join(dir, 'b.test.js'), body('b', 50));
      writeFileSync(path.join(dir, 'c.test.js'), body('c', 500));
      const run = () =>
        execFileSync(
          process.execPath,
          [
            path.join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js'),
            `--rootDir=${dir}`,
            '--config={"testEnvironment":"node"}',
            `--cacheDirectory=${path.join(dir, 'cache')}`,
            `--testSequencer=${path.join(ROOT, 'scripts', 'jest-sequencer.js')}`,
            '--runInBand',
          ],
          { cwd: dir, encoding: 'utf8', stdio: 'pipe' },
        );
      run();
      // a second run, with the first run's timings in the cache
      run();
      expect(readFileSync(log, 'utf8').split('\n').filter(Boolean)).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60000);
});
