/**
 * Crash test: the real `npm start` host (dist/local/main.js) in a child process, SIGKILLed in the middle
 * of an orchestration and while queued messages are being consumed, then restarted on the same data
 * folder. The orchestration completes, no completed activity runs again, no message is lost.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

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
  if (!existsSync(mainJs))
    throw new Error(`${mainJs} is missing: run npm run build (npm test does it first)`);
  const child = spawn(
    process.execPath,
    [mainJs, '--port', '0', '--data-dir', dataDir, '--functions', fixtures],
    {
      env: { ...process.env, CRASH_TEST_LOG: logFile, LOG_LEVEL: 'warn', CI: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout?.on('data', (d) => (out += d.toString()));
  child.stderr?.on('data', (d) => (out += d.toString()));
  const deadline = Date.now() + 30000;
  while (!/ready\./.test(out)) {
    if (child.exitCode !== null) throw new Error(`host exited ${child.exitCode}: ${out}`);
    if (Date.now() > deadline) throw new Error(`host did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const baseUrl = /local host on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1] as string;
  const key = /Function key: (\S+)/.exec(out)?.[1] as string;
  return { child, baseUrl, key, output: () => out };
}

function kill9(h: Running): Promise<void> {
  return new Promise((resolve) => {
    if (h.child.exitCode !== null || h.child.signalCode !== null) return resolve();
    h.child.once('exit', () => resolve());
    h.child.kill('SIGKILL');
  });
}

async function poll<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 60000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

jest.setTimeout(180000);

describe('local host survives kill -9', () => {
  let dir: string;
  let host: Running | undefined;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'crash-'))));
  afterEach(async () => {
    if (host && host.child.exitCode === null && host.child.signalCode === null) await kill9(host);
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }); // a killed host's Azurite may still be flushing
  });

  it('resumes the orchestration from its history; each completed activity ran exactly once', async () => {
    const log = path.join(dir, 'activities.log');
    writeFileSync(log, '');
    host = await startHost(path.join(dir, 'data'), log);
    const h = host;
    const status = async () => {
      const res = await fetch(`${h.baseUrl}/api/crash/status/run1`, {
        headers: { 'x-functions-key': h.key },
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
    // kill while the durable timer after step 2 is pending (steps 1-2 committed, nothing in flight)
    await poll(
      async () => ((await status())?.customStatus === 'timer-after-2' ? true : undefined),
      'the timer after step 2',
    );
    await kill9(h);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(['run1:1', 'run1:2']);

    host = await startHost(path.join(dir, 'data'), log);
    const h2 = host;
    const done = await poll(async () => {
      const res = await fetch(`${h2.baseUrl}/api/crash/status/run1`, {
        headers: { 'x-functions-key': h2.key },
      });
      const s = (await res.json()) as { runtimeStatus: string; output?: number[] };
      return s.runtimeStatus === 'Completed' ? s : undefined;
    }, 'completion after restart');
    expect(done.output).toEqual([1, 2, 3, 4, 5, 6]);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual([1, 2, 3, 4, 5, 6].map((n) => `run1:${n}`));
  });

  it('keeps queued messages across a kill -9: every message is consumed, none lost', async () => {
    const log = path.join(dir, 'messages.log');
    writeFileSync(log, '');
    host = await startHost(path.join(dir, 'data'), log);
    const res = await fetch(`${host.baseUrl}/api/crash/enqueue?n=8`, {
      method: 'POST',
      headers: { 'x-functions-key': host.key },
    });
    expect(res.status).toBe(202);
    await poll(
      async () => (readFileSync(log, 'utf8').split('\n').filter(Boolean).length >= 2 ? true : undefined),
      'two messages consumed',
    );
    await kill9(host);
    const before = readFileSync(log, 'utf8').split('\n').filter(Boolean);
    expect(before.length).toBeLessThan(8);

    host = await startHost(path.join(dir, 'data'), log);
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
