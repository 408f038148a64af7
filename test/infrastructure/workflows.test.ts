/**
 * GitHub workflows of this repository (.github/workflows) and the templates for the Odoo repository
 * (templates/odoo-repo): valid YAML, the shape GitHub needs, every script and npm script they run
 * exists, and the Odoo repository's helper scripts do what the pipeline relies on (run for real:
 * git in a scratch repository, a fake GitHub REST server on loopback for the commit statuses).
 */
import { execFile, execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { SETTINGS } from '../../shared/config';
import { parseCoveragePercent } from '../../shared/domain/coverage-gate';
import { ROOT } from './bicep-cli';

const TEMPLATE_ROOT = path.join(ROOT, 'templates', 'odoo-repo');

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
}
interface Workflow {
  name: string;
  on: unknown;
  env?: Record<string, string>;
  jobs: Record<string, { 'runs-on': string; steps: Step[]; container?: unknown }>;
}

function load(file: string): Workflow {
  const doc = parseDocument(readFileSync(file, 'utf8'), { prettyErrors: true });
  if (doc.errors.length) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
  return doc.toJS() as Workflow;
}

function workflows(dir: string): string[] {
  const d = path.join(dir, '.github', 'workflows');
  return readdirSync(d)
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => path.join(d, f));
}

/** Paths a run: block executes or reads, relative to the repository root. */
function referencedPaths(run: string): string[] {
  const found = new Set<string>();
  for (const m of run.matchAll(
    /(?:^|[\s"'=])((?:\.\/)?(?:\.ci|\.github\/scripts|scripts|infrastructure)\/[A-Za-z0-9_./${}-]+)/g,
  ))
    found.add(m[1].replace(/^\.\//, ''));
  return [...found];
}

const expandTargets = (p: string, targets: string[]) =>
  p.includes('$TARGET') ? targets.map((t) => p.replace('$TARGET', t)) : [p];

describe.each([
  ['this repository', ROOT],
  ['the Odoo repository templates', TEMPLATE_ROOT],
])('workflows of %s', (_label, root) => {
  const files = workflows(root);

  it('are valid YAML with a name, triggers and jobs made of steps', () => {
    expect(files.length).toBeGreaterThanOrEqual(2);
    for (const f of files) {
      const wf = load(f);
      expect({ f, name: typeof wf.name }).toEqual({ f, name: 'string' });
      expect(wf.on).toBeTruthy();
      expect(Object.keys(wf.jobs).length).toBeGreaterThan(0);
      for (const [job, spec] of Object.entries(wf.jobs)) {
        expect({ f, job, runsOn: typeof spec['runs-on'] }).toEqual({ f, job, runsOn: 'string' });
        expect(spec.steps.length).toBeGreaterThan(0);
        for (const step of spec.steps) {
          expect({
            f,
            job,
            step: step.name ?? step.uses ?? step.run,
            kind: !!step.uses !== !!step.run,
          }).toEqual({ f, job, step: step.name ?? step.uses ?? step.run, kind: true });
          if (step.uses) expect(step.uses).toMatch(/^[\w.-]+\/[\w./-]+@v\d+$/);
        }
      }
    }
  });

  it('run only scripts and npm scripts that exist', () => {
    const pkg = existsSync(path.join(root, 'package.json'))
      ? (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
          scripts: Record<string, string>;
        })
      : undefined;
    const checked: string[] = [];
    for (const f of files) {
      const wf = load(f);
      const targets =
        (wf.on as { workflow_dispatch?: { inputs?: { environment?: { options?: string[] } } } })
          ?.workflow_dispatch?.inputs?.environment?.options ?? [];
      for (const spec of Object.values(wf.jobs)) {
        for (const step of spec.steps.filter((s) => s.run)) {
          const run = step.run as string;
          for (const p of referencedPaths(run).flatMap((x) => expandTargets(x, targets))) {
            checked.push(p);
            expect({ f, path: p, exists: existsSync(path.join(root, p)) }).toEqual({
              f,
              path: p,
              exists: true,
            });
          }
          for (const m of run.matchAll(/npm run ([\w:-]+)/g)) {
            expect({ f, script: m[1], exists: !!pkg?.scripts[m[1]] }).toEqual({
              f,
              script: m[1],
              exists: true,
            });
          }
          if (/\bnpm test\b/.test(run)) expect(pkg?.scripts.test).toBeTruthy();
        }
      }
    }
    expect(checked.length).toBeGreaterThan(0);
  });
});

describe('this repository', () => {
  it('CI lints, typechecks, builds and lints Bicep, and runs .ci/run (tests + coverage gate)', () => {
    const ci = load(path.join(ROOT, '.github', 'workflows', 'ci.yml'));
    const runs = Object.values(ci.jobs).flatMap((j) => j.steps.map((s) => s.run ?? ''));
    for (const needle of [
      'npm run lint',
      'npm run typecheck',
      'scripts/install-bicep.sh',
      'bicep build',
      'bicep lint',
      '.ci/run',
    ]) {
      expect({ needle, found: runs.some((r) => r.includes(needle)) }).toEqual({ needle, found: true });
    }
  });

  it('deploy logs in with OIDC, runs what-if before create, and ships the function app package', () => {
    const deploy = load(path.join(ROOT, '.github', 'workflows', 'deploy.yml'));
    expect((deploy as unknown as { permissions: Record<string, string> }).permissions['id-token']).toBe(
      'write',
    );
    const steps = Object.values(deploy.jobs).flatMap((j) => j.steps);
    const text = steps.map((s) => s.run ?? s.uses ?? '');
    const whatIf = text.findIndex((t) => t.includes('az deployment sub what-if'));
    const create = text.findIndex((t) => t.includes('az deployment sub create'));
    expect(whatIf).toBeGreaterThanOrEqual(0);
    expect(create).toBeGreaterThan(whatIf);
    const logins = steps.filter((s) => s.uses?.startsWith('azure/login@'));
    expect(logins.length).toBeGreaterThan(0);
    for (const l of logins)
      expect(Object.keys(l.with ?? {}).sort()).toEqual(['client-id', 'subscription-id', 'tenant-id']);
    expect(text.some((t) => t.includes('config-zip'))).toBe(true);
    // no secret in a GITHUB_-prefixed variable: GitHub reserves that prefix
    for (const job of Object.values(deploy.jobs) as Array<{ env?: Record<string, string> }>)
      for (const k of Object.keys(job.env ?? {})) expect(k).not.toMatch(/^GITHUB_/);
  });
});

describe('the Odoo repository templates', () => {
  let tmp = '';
  beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'odoo-repo-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('the image workflow is the one the pipeline waits for, and the CI publishes the status context it reads', () => {
    expect(load(path.join(TEMPLATE_ROOT, '.github', 'workflows', 'build-image.yml')).name).toBe(
      SETTINGS.GITHUB_IMAGE_WORKFLOW.default,
    );
    const ci = load(path.join(TEMPLATE_ROOT, '.github', 'workflows', 'ci.yml'));
    expect(ci.env?.COVERAGE_CONTEXT).toBe(SETTINGS.COVERAGE_CONTEXT.default);
    expect(ci.env?.COVERAGE_MIN).toBe(SETTINGS.COVERAGE_MIN.default);
  });

  it('image-tags.sh derives uat-vX.Y.Z and uat-latest from VERSION and refuses a malformed VERSION', () => {
    const script = path.join(TEMPLATE_ROOT, '.github', 'scripts', 'image-tags.sh');
    writeFileSync(path.join(tmp, 'VERSION'), '1.4.2\n');
    const out = execFileSync('bash', [script, path.join(tmp, 'VERSION'), 'docker.io/acme/odoo-mta'], {
      encoding: 'utf8',
    });
    expect(out.trim().split('\n')).toEqual([
      'version=1.4.2',
      'versioned=docker.io/acme/odoo-mta:uat-v1.4.2',
      'latest=docker.io/acme/odoo-mta:uat-latest',
    ]);
    writeFileSync(path.join(tmp, 'VERSION'), '1.4\n');
    expect(() =>
      execFileSync('bash', [script, path.join(tmp, 'VERSION'), 'docker.io/acme/odoo-mta'], { stdio: 'pipe' }),
    ).toThrow(/must hold X\.Y\.Z/);
  });

  it('changed-addons.sh lists the addons a change touches (all of them without a base)', () => {
    const repo = path.join(tmp, 'repo');
    mkdirSync(repo);
    const git = (...args: string[]) =>
      execFileSync('git', args, {
        cwd: repo,
        encoding: 'utf8',
        env: {
          ...process.env,
          GIT_AUTHOR_NAME: 't',
          GIT_AUTHOR_EMAIL: 't@example.invalid',
          GIT_COMMITTER_NAME: 't',
          GIT_COMMITTER_EMAIL: 't@example.invalid',
        },
      }).trim();
    git('init', '-q', '-b', 'main');
    for (const a of ['sale_custom', 'stock_custom', 'web_theme']) {
      mkdirSync(path.join(repo, a, 'models'), { recursive: true });
      writeFileSync(path.join(repo, a, '__manifest__.py'), `{'name': '${a}'}\n`);
      writeFileSync(path.join(repo, a, 'models', 'x.py'), '# v1\n');
    }
    mkdirSync(path.join(repo, 'docs'));
    writeFileSync(path.join(repo, 'docs', 'x.md'), 'v1\n');
    git('add', '-A');
    git('commit', '-qm', 'base');
    const base = git('rev-parse', 'HEAD');
    writeFileSync(path.join(repo, 'stock_custom', 'models', 'x.py'), '# v2\n');
    writeFileSync(path.join(repo, 'docs', 'x.md'), 'v2\n');
    git('commit', '-qam', 'change');
    const head = git('rev-parse', 'HEAD');
    const script = path.join(TEMPLATE_ROOT, '.github', 'scripts', 'changed-addons.sh');
    const run = (b: string) =>
      execFileSync('bash', [script, b, head, '.'], { cwd: repo, encoding: 'utf8' }).trim();
    expect(run(base)).toBe('stock_custom');
    expect(run('')).toBe('sale_custom,stock_custom,web_theme');
    expect(run('0000000000000000000000000000000000000000')).toBe('sale_custom,stock_custom,web_theme');
  });

  describe('coverage-status.sh against a fake GitHub REST API', () => {
    // each run starts bash, curl and node a few times: slow on a loaded machine
    jest.setTimeout(180_000);
    let server: http.Server;
    let api = '';
    const posted: Array<{
      url: string;
      auth?: string;
      body: { state: string; context: string; description: string };
    }> = [];
    let baseDescription = 'Coverage: 85.0 % of lines (sale_custom)';

    beforeAll(async () => {
      server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          res.setHeader('content-type', 'application/json');
          if (
            req.method === 'GET' &&
            /^\/repos\/acme\/odoo\/commits\/[0-9a-f]+\/status$/.test(req.url ?? '')
          ) {
            res.end(
              JSON.stringify({
                state: 'success',
                statuses: [
                  { context: 'ci/other', state: 'success', description: '99 %' },
                  { context: 'coverage', state: 'success', description: baseDescription },
                ],
              }),
            );
          } else if (
            req.method === 'POST' &&
            /^\/repos\/acme\/odoo\/statuses\/[0-9a-f]+$/.test(req.url ?? '')
          ) {
            posted.push({
              url: req.url ?? '',
              auth: req.headers.authorization,
              body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
            });
            res.statusCode = 201;
            res.end('{}');
          } else {
            res.statusCode = 404;
            res.end('{"message":"Not Found"}');
          }
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await new Promise<void>((r) => server.close(() => r()));
    });

    function status(
      args: string[],
      extra: Record<string, string> = {},
    ): Promise<{ code: number; out: string }> {
      return new Promise((resolve) => {
        execFile(
          'bash',
          [path.join(TEMPLATE_ROOT, '.github', 'scripts', 'coverage-status.sh'), ...args],
          {
            cwd: tmp,
            env: {
              PATH: process.env.PATH ?? '',
              GH_TOKEN: 'test-token',
              GITHUB_API_URL: api,
              GITHUB_REPOSITORY: 'acme/odoo',
              GITHUB_SHA: 'abc1234',
              BASE_SHA: 'def5678',
              ADDONS: 'sale_custom',
              ...extra,
            },
          },
          (err, stdout, stderr) =>
            resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
        );
      });
    }
    // what `coverage report --format=total --precision=2` writes
    const report = (pct: number) => {
      const f = path.join(tmp, `coverage-${pct}.txt`);
      writeFileSync(f, `${pct.toFixed(2)}\n`);
      return f;
    };

    it('publishes success with a description the intake gate parses', async () => {
      posted.length = 0;
      const r = await status([report(87.26)]);
      expect(r.code).toBe(0);
      expect(posted).toHaveLength(1);
      expect(posted[0].url).toBe('/repos/acme/odoo/statuses/abc1234');
      expect(posted[0].auth).toBe('Bearer test-token');
      expect(posted[0].body).toEqual({
        state: 'success',
        context: 'coverage',
        description: 'Coverage: 87.3 % of lines (sale_custom)',
      });
      expect(parseCoveragePercent(posted[0].body.description)).toBe(87.3);
    });

    it('fails below the minimum and below the base commit, saying why', async () => {
      posted.length = 0;
      const low = await status([report(79.9)]);
      expect(low.code).not.toBe(0);
      expect(posted[0].body.state).toBe('failure');
      expect(posted[0].body.description).toBe(
        'Coverage: 79.9 % of lines (sale_custom), below the minimum 80 %',
      );
      const below = await status([report(84.0)]);
      expect(below.code).not.toBe(0);
      expect(posted[1].body).toMatchObject({
        state: 'failure',
        description: 'Coverage: 84.0 % of lines (sale_custom), below the base branch (85.0 %)',
      });
      expect(parseCoveragePercent(posted[1].body.description)).toBe(84);
    });

    it('carries the base coverage forward when no addon changed, and reports a missing report as an error', async () => {
      posted.length = 0;
      baseDescription = 'Coverage: 91,5 % of lines';
      expect((await status(['--carry-forward'])).code).toBe(0);
      expect(posted[0].body).toMatchObject({
        state: 'success',
        description: 'Coverage: 91.5 % of lines (no addon changed, carried from def5678)',
      });
      const missing = await status([path.join(tmp, 'nope.txt')]);
      expect(missing.code).not.toBe(0);
      expect(posted[1].body.state).toBe('error');
    });
  });
});
