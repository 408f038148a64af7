/**
 * `npm run demo` stopped with `kill` (SIGTERM) leaves nothing running (issue #17).
 *
 * Why this proves it without running the whole demo: the demo registers every part it starts — the
 * sandbox (dockerd, the registry, both VMs' sshd), the fake GitHub and Slack, the embedded host — with
 * local/demo-supervisor.ts and stops them only through it; a full demo run takes minutes and needs the
 * shared sandbox. Here a child process uses the SAME built module (dist/local/demo-supervisor.js, what
 * `npm run demo` runs) with real daemons of the kind the sandbox runs (OpenSSH's sshd, each in its own
 * folder, like the VMs' sshd) and a temp folder, and is sent SIGTERM like `kill <pid>` would:
 *  - once everything is up: every daemon is gone, the folder is removed, the exit code is 143;
 *  - while a part is STILL STARTING (the demo's sandbox start takes minutes): the supervisor waits for
 *    it and stops it too, rather than leaving it behind.
 * "Nothing left" is checked from outside: no process whose command line names the folder, nothing
 * listening on the daemons' ports, the folder gone. Needs `npm run build` (dist/), like the demo test.
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';

jest.setTimeout(120_000);

const root = path.resolve(__dirname, '..', '..');
const dist = path.join(root, 'dist');

/** the child: the demo's supervisor with two real sshd daemons; the second one's start is slow */
const CHILD = `
const fs = require('node:fs'), os = require('node:os'), path = require('node:path');
const { superviseDemo } = require(${JSON.stringify(path.join(dist, 'local', 'demo-supervisor.js'))});
const { startSshd, generateKeyPair } = require(${JSON.stringify(path.join(dist, 'test', 'support', 'sshd.js'))});
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-supervisor-'));
const say = (l) => process.stdout.write(l + '\\n');
const sup = superviseDemo({ dirs: [dir], say });
const tell = (o) => say('@@' + JSON.stringify(o));
const key = generateKeyPair();
(async () => {
  tell({ dir });
  const a = await sup.track('sshd a', startSshd({ authorizedKeys: [key.publicKey], dir: path.join(dir, 'a') }), (h) => h.stop());
  tell({ up: 'a', port: a.port });
  tell({ starting: 'b' });
  const b = await sup.track('sshd b', (async () => {
    await new Promise((r) => setTimeout(r, Number(process.env.SLOW_START_MS || 0)));
    return startSshd({ authorizedKeys: [key.publicKey], dir: path.join(dir, 'b') });
  })(), (h) => h.stop());
  tell({ up: 'b', port: b.port });
  setInterval(() => undefined, 1 << 30); // keeps running like the demo's host until stopped
})().catch((e) => { say('child failed: ' + e.message); process.exit(3); });
`;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  dir?: string;
  ports: number[];
}

/** start the child, send SIGTERM when `when(message)` says so, wait for it to end */
function runAndKill(when: (m: Record<string, unknown>) => boolean, slowStartMs = 0): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', CHILD], {
      cwd: root,
      env: { ...process.env, SLOW_START_MS: String(slowStartMs) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run: Run = { code: null, signal: null, out: '', ports: [] };
    let sent = false;
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      run.out += d.toString();
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.startsWith('@@')) continue;
        const m = JSON.parse(line.slice(2)) as Record<string, unknown>;
        if (typeof m.dir === 'string') run.dir = m.dir;
        if (typeof m.port === 'number') run.ports.push(m.port);
        if (!sent && when(m)) {
          sent = true;
          child.kill('SIGTERM'); // what `kill <pid>` sends
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => (run.out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ ...run, code, signal }));
    setTimeout(() => child.kill('SIGKILL'), 100_000).unref();
  });
}

/** processes whose command line names `dir` (the daemons run from their folder's config) */
function processesOf(dir: string): string[] {
  const ps = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return ps.split('\n').filter((l) => l.includes(dir) && !l.includes('ps -eo'));
}

const answers = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

const built = existsSync(path.join(dist, 'local', 'demo-supervisor.js'));
const canRun = built && process.getuid?.() === 0 && existsSync('/usr/sbin/sshd');
(canRun ? describe : describe.skip)('the demo under kill (SIGTERM): nothing left running', () => {
  it('everything up, then SIGTERM: every daemon stopped, the folder removed, exit 143', async () => {
    const r = await runAndKill((m) => m.up === 'b');
    expect(r.out).toContain('SIGTERM: stopping the demo');
    expect(r.code).toBe(143);
    expect(r.dir).toBeDefined();
    expect(r.ports).toHaveLength(2);
    expect(processesOf(r.dir!)).toEqual([]);
    for (const p of r.ports) expect(await answers(p)).toBe(false);
    expect(existsSync(r.dir!)).toBe(false);
  });

  it('SIGTERM while a part is still starting: it is stopped once it is up, nothing is left', async () => {
    const r = await runAndKill((m) => m.starting === 'b', 1500);
    expect(r.code).toBe(143);
    // b came up after the signal (its start was under way) and was stopped all the same
    expect(r.ports).toHaveLength(2);
    expect(processesOf(r.dir!)).toEqual([]);
    for (const p of r.ports) expect(await answers(p)).toBe(false);
    expect(existsSync(r.dir!)).toBe(false);
  });
});
