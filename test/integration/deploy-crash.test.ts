/**
 * Crash test: the real `npm start` host (dist/local/main.js) running deployUat (compiled) against an
 * in-memory VM whose state is a file, SIGKILLed when the deploy reaches each step, then restarted on the
 * same data folder. The deploy finishes correctly: Succeeded, new image running, no module pending,
 * the backup taken before the stop, and nothing ran out of order.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const mainJs = path.join(root, 'dist', 'local', 'main.js');
const fixtures = path.join(root, 'test', 'fixtures', 'deploy-crash');

interface Running {
  child: ChildProcess;
  baseUrl: string;
  key: string;
}

async function startHost(dataDir: string, stateFile: string): Promise<Running> {
  const child = spawn(
    process.execPath,
    [mainJs, '--port', '0', '--data-dir', dataDir, '--functions', fixtures],
    {
      env: {
        ...process.env,
        BACKUP_STORAGE_CONNECTION: '',
        DEPLOY_CRASH_STATE: stateFile,
        LOG_LEVEL: 'error',
        CI: '',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout?.on('data', (d) => (out += d.toString()));
  child.stderr?.on('data', (d) => (out += d.toString()));
  const deadline = Date.now() + 60000;
  while (!/ready\./.test(out)) {
    if (child.exitCode !== null) throw new Error(`host exited ${child.exitCode}: ${out}`);
    if (Date.now() > deadline) throw new Error(`host did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    baseUrl: /local host on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1],
    key: /Function key: (\S+)/.exec(out)![1],
  };
}

const kill9 = (h: Running) =>
  new Promise<void>((resolve) => {
    if (h.child.exitCode !== null) return resolve();
    h.child.once('exit', () => resolve());
    h.child.kill('SIGKILL');
  });

interface View {
  runtimeStatus?: string;
  status?: { step?: string } | null;
  outcome?: string | null;
  result?: { outcome?: string; backupId?: string; reason?: string } | null;
}

describe('deployUat survives SIGKILL of the host at each step', () => {
  let dir: string;
  let host: Running | undefined;
  beforeAll(() => {
    if (!existsSync(mainJs) || !existsSync(path.join(root, 'dist', 'test', 'support', 'fake-vm-shell.js')))
      throw new Error('dist/ is missing: run npm run build first (npm test does)');
    dir = mkdtempSync(path.join(os.tmpdir(), 'deploy-crash-'));
  });
  afterAll(async () => {
    if (host) await kill9(host);
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }); // a killed host's Azurite may still be flushing
  });

  it('finishes correctly after a kill at every step boundary', async () => {
    const dataDir = path.join(dir, 'data');
    const stateFile = path.join(dir, 'vm.json');
    host = await startHost(dataDir, stateFile);
    const id = 'deploy-uat-1.1.0-bbbbbbbbbbbb';
    const start = await fetch(`${host.baseUrl}/api/crashdeploy/start`, {
      method: 'POST',
      headers: { 'x-functions-key': host.key, 'content-type': 'application/json' },
      body: JSON.stringify({
        instanceId: id,
        environment: 'uat',
        version: '1.1.0',
        sha: 'b'.repeat(40),
        imageRef: 'reg.local/odoo-mta:uat-v1.1.0',
        force: true,
      }),
    });
    expect(start.status).toBe(202);
    const view = async (): Promise<View> => {
      const res = await fetch(`${host!.baseUrl}/api/deployments/${id}`, {
        headers: { 'x-functions-key': host!.key },
      }).catch(() => undefined);
      return res && res.ok ? ((await res.json()) as View) : {};
    };
    const killedAt: string[] = [];
    for (const step of ['preflight', 'backup', 'pull', 'stop', 'migrate', 'start', 'health']) {
      const deadline = Date.now() + 30000;
      let v = await view();
      while (v.status?.step !== step && v.runtimeStatus !== 'Completed' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        v = await view();
      }
      if (v.runtimeStatus === 'Completed') break;
      if (v.status?.step !== step) continue; // passed it between two polls
      await kill9(host);
      killedAt.push(step);
      host = await startHost(dataDir, stateFile);
    }
    let v: View = {};
    const deadline = Date.now() + 60000;
    while (v.runtimeStatus !== 'Completed' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      v = await view();
    }
    expect(v.runtimeStatus).toBe('Completed');
    expect(v.result?.outcome).toBe('Succeeded');
    expect(killedAt.length).toBeGreaterThanOrEqual(5);
    const vm = JSON.parse(readFileSync(stateFile, 'utf8')) as {
      state: { image: string; webRunning: boolean; pending: string; db: string };
      calls: string[];
    };
    expect(vm.state).toMatchObject({ image: 'reg.local/odoo-mta:uat-v1.1.0', webRunning: true, pending: '' });
    expect(vm.state.db).toContain('migrated(reg.local/odoo-mta:uat-v1.1.0,all)');
    const verbs = vm.calls.map((c) => c.split(' ')[0]);
    // the backup happened before the first stop, the pull before it, and the last start is the new image
    expect(verbs.indexOf('backup-db')).toBeLessThan(verbs.indexOf('stop'));
    expect(verbs.indexOf('pull')).toBeLessThan(verbs.indexOf('stop'));
    expect(vm.calls.filter((c) => c.startsWith('start')).pop()).toBe('start reg.local/odoo-mta:uat-v1.1.0');
    // no step after the first stop was skipped: every stop is followed by a start
    expect(verbs.lastIndexOf('start')).toBeGreaterThan(verbs.lastIndexOf('stop'));
  }, 240000);
});
