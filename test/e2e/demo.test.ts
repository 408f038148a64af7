/**
 * `npm run demo -- --once`, as someone new to the project runs it (issue #9: the demo tells the whole
 * story on the sandbox and passes on a fresh clone). The built demo (dist/local/demo.js; `npm test`
 * builds first) runs as a child process, like `npm run demo` does, on the shared sandbox (it waits for
 * the sandbox lock like the other e2e suites). What is checked is what its reader sees: every chapter
 * of the story, the outcomes it reports, the status page URL, and exit code 0.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describeSandbox } from '../support/sandbox';

jest.setTimeout(30 * 60 * 1000);

const root = path.resolve(__dirname, '..', '..');
const demoJs = path.join(root, 'dist', 'local', 'demo.js');

function runDemo(): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [demoJs, '--once'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, out }));
  });
}

describeSandbox('npm run demo -- --once', () => {
  it('tells the whole story: blocked → UAT → rolled back → approved → PROD → UAT refreshed and anonymized, and exits 0', async () => {
    const { code, out } = await runDemo();
    // the whole output on failure: it is what an operator would read
    if (code !== 0) throw new Error(`the demo exited with ${code}:\n${out.slice(-6000)}`);
    const plain = out.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'), ''); // no terminal bold
    // every chapter, in order
    const chapters = [
      '[1] A merge with 76.4 % coverage is blocked by the gate',
      '[2] A merge with 85.0 % coverage passes the gate and is deployed to UAT',
      '[3] A broken release (its migration fails) is rolled back automatically',
      '[4] Every intake decision is listed for operators',
      '[5] PROD:',
      '[6] Refresh UAT from PROD',
    ];
    let at = 0;
    for (const c of chapters) {
      const i = plain.indexOf(c, at);
      expect({ chapter: c, found: i >= 0 }).toEqual({ chapter: c, found: true });
      at = i;
    }
    expect(plain).toMatch(/commit status posted: deploy\/uat = failure: "coverage 76\.4 % < 80/);
    expect(plain).toMatch(/deploy-uat-\S+: Succeeded/);
    expect(plain).toMatch(/deploy-uat-\S+: RolledBack/);
    expect(plain).toContain('the same: promoted by retag, not rebuilt');
    expect(plain).toMatch(/refresh-uat-\S+: Succeeded/);
    expect(plain).toContain("PROD's e-mail addresses in UAT: none");
    expect(plain).toContain(
      'Demo finished: blocked → deployed → rolled back → approved → PROD → UAT refreshed and anonymized, as expected.',
    );
    expect(plain).toMatch(
      /Status page \(read-only link\): http:\/\/127\.0\.0\.1:\d+\/api\/dashboard\?key=[A-Za-z0-9_-]{32} /,
    );
  });
});
