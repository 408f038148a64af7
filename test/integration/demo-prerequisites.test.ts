/**
 * `npm run demo` on a fresh machine: what the sandbox lacks is installed with apt-get when the demo runs as
 * root (scripts/install-debian-packages.sh, the list `.ci/run` installs too), and said plainly; otherwise
 * the demo stops before starting anything, with the command to run. `apt-get` here is a recorder placed
 * first on PATH (the real one would change this machine); the script itself is the real one.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ensureSandboxPrerequisites } from '../../local/prerequisites';
import { SANDBOX_TOOLS } from '../support/sandbox';

const ROOT = path.resolve(__dirname, '..', '..');
const SCRIPT = path.join(ROOT, 'scripts', 'install-debian-packages.sh');
let bin: string;
let calls: string;

beforeEach(() => {
  bin = mkdtempSync(path.join(os.tmpdir(), 'demo-prereq-'));
  calls = path.join(bin, 'apt-get.calls');
  fakeAptGet(0);
});
afterEach(() => rmSync(bin, { recursive: true, force: true }));

/** an apt-get that records each call (one line of arguments) and exits with `code` on install */
function fakeAptGet(code: number): void {
  const f = path.join(bin, 'apt-get');
  writeFileSync(
    f,
    `#!/bin/sh\necho "$*" >> '${calls}'\nif [ "$1" = install ]; then echo 'E: Unable to locate package docker-registry' >&2; exit ${code}; fi\n`,
  );
  chmodSync(f, 0o755);
}
const env = () => ({ ...process.env, PATH: `${bin}:${process.env.PATH}` });
const aptCalls = () => (existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : []);
const sandboxPackages = () =>
  spawnSync('bash', [SCRIPT, '--list', 'sandbox'], { encoding: 'utf8' }).stdout.trim().split('\n');

/** the demo's check, as root unless told, with apt-get the recorder; what it said goes into `said` */
function ensure(missing: () => string[], o: { isRoot?: boolean; said?: string[] } = {}): Promise<void> {
  return ensureSandboxPrerequisites({
    missing,
    root: ROOT,
    say: (l) => o.said?.push(l),
    env: env(),
    isRoot: o.isRoot ?? true,
  });
}

/** what the sandbox check reports, in sequence: the first call, then after the install */
function sequence(...answers: string[][]): () => string[] {
  let i = 0;
  return () => answers[Math.min(i++, answers.length - 1)];
}

test('as root, what the sandbox lacks is installed with apt-get, saying so, and the demo goes on', async () => {
  const said: string[] = [];
  await ensure(sequence(['jq', 'docker-registry'], []), { said });
  const [update, install] = aptCalls();
  expect(update).toBe('update -qq');
  const args = install.split(' ');
  expect(args.slice(0, 4)).toEqual(['install', '-y', '-qq', '--no-install-recommends']);
  expect(args.slice(4)).toEqual(sandboxPackages());
  expect(args).toEqual(expect.arrayContaining(['jq', 'docker-registry', 'docker.io', 'openssh-server']));
  expect(said[0]).toMatch(
    /Installing the sandbox's Debian packages with apt-get \(missing here: jq, docker-registry\)/,
  );
  expect(said.at(-1)).toBe('Debian packages installed.');
});

test('nothing missing: apt-get is not run and nothing is said', async () => {
  const said: string[] = [];
  await ensure(() => [], { said });
  expect(aptCalls()).toEqual([]);
  expect(said).toEqual([]);
});

test('not root: the demo stops before anything starts, with the command to run, and apt-get is not run', async () => {
  await expect(
    ensure(() => ['root (dockerd, sshd and debootstrap need it)', 'jq'], { isRoot: false }),
  ).rejects.toThrow(/need root.*lacks: root .*, jq.*sudo bash scripts\/install-debian-packages\.sh sandbox/);
  expect(aptCalls()).toEqual([]);
});

test('apt-get fails: a clear error with its own words, nothing started', async () => {
  fakeAptGet(100);
  await expect(ensure(() => ['docker-registry'])).rejects.toThrow(
    /installing the sandbox's Debian packages failed \(.*exit 100\).*\n.*Unable to locate package docker-registry/s,
  );
});

test('installed but still missing: the error names what is still missing', async () => {
  await expect(ensure(sequence(['jq', 'zstd'], ['zstd']))).rejects.toThrow(
    "still missing after installing the sandbox's Debian packages: zstd",
  );
});

test('the script refuses an unknown group, and every group .ci/run installs is the script', () => {
  const r = spawnSync('bash', [SCRIPT, 'everything'], { encoding: 'utf8', env: env() });
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/unknown group 'everything'/);
  expect(aptCalls()).toEqual([]);
  expect(readFileSync(path.join(ROOT, '.ci', 'run'), 'utf8')).toMatch(
    /^bash scripts\/install-debian-packages\.sh$/m,
  );
});

test('every tool the sandbox looks for is installed by a package of the sandbox group (asked of dpkg)', () => {
  const pkgs = sandboxPackages();
  const ownerOf = (tool: string) => {
    const file = ['/usr/bin', '/usr/sbin'].map((d) => path.join(d, tool)).find((f) => existsSync(f));
    if (!file) return `${tool}: not installed here`;
    const r = spawnSync('dpkg', ['-S', file], { encoding: 'utf8' });
    return r.stdout.split(':')[0];
  };
  for (const tool of [...SANDBOX_TOOLS, 'docker-compose', 'debootstrap'])
    expect([tool, pkgs.includes(ownerOf(tool))]).toEqual([tool, true]);
});
