/**
 * Crash test: the real `npm start` host (dist/local/main.js) in its own process group — Node side and
 * the .NET host of the Durable Task engine — is SIGKILLed as a group (what a crash of the host does)
 * while an orchestration waits on a durable timer, or while queued messages are being consumed, then
 * restarted on the same data folder. The orchestration completes, no completed activity runs again, no
 * message is lost. The orchestration state lives in Azurite's queues and tables: Azurite must outlive
 * the host (its own supervised process group, re-attached by the restarted host), or the restarted
 * engine does not know the instance at all (what happened while Azurite ran inside the host's group).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SUPERVISOR_FILE, type SupervisorState } from '../../local/azurite';

const root = path.resolve(__dirname, '..', '..');
const mainJs = path.join(root, 'dist', 'local', 'main.js');
const fixtures = path.join(root, 'test', 'fixtures', 'host-functions');

interface Running {
  child: ChildProcess;
  baseUrl: string;
  key: string;
  output: () => string;
}

async function startHost(dataDir: string, logFile: string): Promise<Running> {
  if (!existsSync(mainJs)) throw new Error(`${mainJs} is missing: run npm run build`);
  const child = spawn(
    process.execPath,
    [mainJs, '--port', '0', '--data-dir', dataDir, '--functions', fixtures],
    {
      env: {
        ...process.env,
        CRASH_TEST_LOG: logFile,
        LOG_LEVEL: 'warn',
        CI: '',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group: the test kills the whole group, as a crash would
    },
  );
  let out = '';
  child.stdout?.on('data', (d) => (out += d.toString()));
  child.stderr?.on('data', (d) => (out += d.toString()));
  const deadline = Date.now() + 240000;
  while (!/ready\./.test(out)) {
    if (child.exitCode !== null) throw new Error(`host exited ${child.exitCode}: ${out}`);
    if (Date.now() > deadline) throw new Error(`host did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const baseUrl = /local host on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1] as string;
  const key = /Function key: (\S+)/.exec(out)?.[1] as string;
  return { child, baseUrl, key, output: () => out };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** SIGKILL to the host's whole process group (Node side and the .NET host) */
function killGroup(h: Running): Promise<void> {
  return new Promise((resolve) => {
    if (h.child.exitCode !== null || h.child.signalCode !== null) return resolve();
    h.child.once('exit', () => resolve());
    process.kill(-h.child.pid!, 'SIGKILL');
  });
}

async function poll<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 150000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

jest.setTimeout(600000);

describe('local host survives kill -9 of its process group', () => {
  let dir: string;
  let host: Running | undefined;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'crash-'))));
  afterEach(async () => {
    if (host && host.child.exitCode === null && host.child.signalCode === null) {
      const exited = new Promise((r) => host!.child.once('exit', r));
      process.kill(-host.child.pid!, 'SIGTERM'); // a clean stop also stops the supervised Azurite
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 30000)))]);
      clearTimeout(timer); // or it keeps the jest worker alive 30 s after the suite
    }
    const state = path.join(dir, 'data', 'azurite', SUPERVISOR_FILE);
    if (existsSync(state)) {
      const { supervisorPid } = JSON.parse(readFileSync(state, 'utf8')) as SupervisorState;
      if (alive(supervisorPid)) process.kill(supervisorPid, 'SIGTERM');
    }
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  });

  it('the instance waiting on a timer resumes after the restart; each completed activity ran exactly once', async () => {
    const log = path.join(dir, 'activities.log');
    writeFileSync(log, '');
    const data = path.join(dir, 'data');
    host = await startHost(data, log);
    const h = host;
    const stateFile = path.join(data, 'azurite', SUPERVISOR_FILE);
    const state = existsSync(stateFile)
      ? (JSON.parse(readFileSync(stateFile, 'utf8')) as SupervisorState)
      : undefined;
    const statusOn = (r: Running) => async () => {
      const res = await fetch(`${r.baseUrl}/api/crash/status/run1`, {
        headers: { 'x-functions-key': r.key },
      });
      return res.status === 200
        ? ((await res.json()) as { runtimeStatus: string; customStatus?: string; output?: number[] })
        : undefined;
    };
    const start = await fetch(`${h.baseUrl}/api/crash/start/run1?steps=6`, {
      method: 'POST',
      headers: { 'x-functions-key': h.key },
    });
    expect(start.status).toBe(202);
    await poll(
      async () => ((await statusOn(h)())?.customStatus === 'timer-after-2' ? true : undefined),
      'the timer after step 2',
    );
    await killGroup(h);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(['run1:1', 'run1:2']);
    const storageSurvived = !!state && alive(state.supervisorPid);

    host = await startHost(data, log);
    const done = await poll(async () => {
      const s = await statusOn(host!)();
      return s?.runtimeStatus === 'Completed' ? s : undefined;
    }, 'completion after restart');
    expect(done.output).toEqual([1, 2, 3, 4, 5, 6]);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual([1, 2, 3, 4, 5, 6].map((n) => `run1:${n}`));
    // the storage outlived the host (its supervisor, in its own process group, survived the kill) and the
    // restarted host re-attached to it (same supervisor, same ports) rather than starting another
    expect(storageSurvived).toBe(true);
    const after = JSON.parse(readFileSync(stateFile, 'utf8')) as SupervisorState;
    expect(after).toMatchObject({ supervisorPid: state!.supervisorPid, blobPort: state!.blobPort });
    expect(after.hostPid).toBe(host.child.pid);
  });

  it('keeps queued messages across a kill -9: every message is consumed, none lost', async () => {
    const log = path.join(dir, 'messages.log');
    writeFileSync(log, '');
    const data = path.join(dir, 'data');
    host = await startHost(data, log);
    const res = await fetch(`${host.baseUrl}/api/crash/enqueue?n=8`, {
      method: 'POST',
      headers: { 'x-functions-key': host.key },
    });
    expect(res.status).toBe(202);
    await poll(
      async () => (readFileSync(log, 'utf8').split('\n').filter(Boolean).length >= 2 ? true : undefined),
      'two messages consumed',
    );
    await killGroup(host);
    const before = readFileSync(log, 'utf8').split('\n').filter(Boolean);
    expect(before.length).toBeLessThan(8);

    host = await startHost(data, log);
    const lines = await poll(async () => {
      const l = readFileSync(log, 'utf8').split('\n').filter(Boolean);
      return new Set(l).size === 8 ? l : undefined;
    }, 'all 8 messages');
    expect(new Set(lines)).toEqual(new Set([0, 1, 2, 3, 4, 5, 6, 7].map((n) => `msg:${n}`)));
    // peek-lock is at-least-once: only a message in flight at the kill may be seen twice
    expect(lines.length).toBeLessThanOrEqual(9);
    for (const l of before) expect(lines.filter((x) => x === l)).toHaveLength(1);
  });
});
