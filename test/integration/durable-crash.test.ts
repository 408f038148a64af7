/**
 * Crash recovery of the embedded Durable engine: a child process running the dist-compiled engine is
 * SIGKILLed twice in the middle of an orchestration — once while a durable timer is pending (after
 * two activities and a raised event), once while an activity is in flight — and restarted on the
 * same SQLite file each time. The orchestration completes; every activity that had completed ran
 * exactly once; the one in flight at the kill ran again (at-least-once, like the real extension);
 * the event raised before the first kill was not lost.
 * Needs `npm run build` (npm test runs it first) so that dist/local/durable/engine.js exists.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';

const ROOT = resolve(__dirname, '..', '..');
const DIST = join(ROOT, 'dist');
const CHILD = join(ROOT, 'test', 'fixtures', 'durable', 'crash-child.js');

let dir: string;
let dbPath: string;
let linesFile: string;
const children: ChildProcess[] = [];

beforeAll(() => {
  if (!existsSync(join(DIST, 'local', 'durable', 'engine.js'))) {
    throw new Error(
      'dist/local/durable/engine.js is missing: run `npm run build` (npm test does) before this test',
    );
  }
  dir = mkdtempSync(join(tmpdir(), 'durable-crash-'));
  dbPath = join(dir, 'durable.sqlite');
  linesFile = join(dir, 'lines.txt');
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function startChild(mode: 'start' | 'resume', env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [CHILD, DIST, dbPath, linesFile, mode], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) =>
    child.on('exit', (code, signal) => r({ code, signal })),
  );
  return { child, exited, out: () => stdout, err: () => stderr };
}

const lines = () =>
  existsSync(linesFile) ? readFileSync(linesFile, 'utf8').split('\n').filter(Boolean) : [];
const countOf = (l: string) => lines().filter((x) => x === l).length;

function query<T>(sql: string): T | undefined {
  if (!existsSync(dbPath)) return undefined;
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).get() as T;
  } catch {
    return undefined; // schema not created yet
  } finally {
    db.close();
  }
}

/** Polls (no timing assertion) until cond() holds or the child dies. */
async function until(cond: () => boolean, what: string, proc: ReturnType<typeof startChild>): Promise<void> {
  for (let i = 0; i < 6000; i++) {
    if (cond()) return;
    if (proc.child.exitCode !== null) throw new Error(`child exited before ${what}: ${proc.err()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`gave up waiting for ${what}; lines: ${lines().join(', ')}; stderr: ${proc.err()}`);
}

test('SIGKILL while a timer is pending and while an activity is in flight: resumes, completed work runs once', async () => {
  // run 1: a1 done, event raised early, a2 done, timer pending -> kill
  const r1 = startChild('start');
  await until(
    () => countOf('done a2') === 1 && (query<{ n: number }>('SELECT count(*) AS n FROM timers')?.n ?? 0) >= 1,
    'a2 to complete and the timer to be stored',
    r1,
  );
  r1.child.kill('SIGKILL');
  expect((await r1.exited).signal).toBe('SIGKILL');

  // run 2: the timer fires, a3 hangs (in flight), a4 completes and is committed -> kill
  const r2 = startChild('resume', { BLOCK: 'a3' });
  await until(
    () =>
      countOf('start a3') === 1 &&
      countOf('done a4') === 1 &&
      query<{ n: number }>(`SELECT count(*) AS n FROM activities WHERE input = '"a4"'`)?.n === 0,
    'a3 to be in flight and a4 committed',
    r2,
  );
  r2.child.kill('SIGKILL');
  expect((await r2.exited).signal).toBe('SIGKILL');

  // run 3: a3 runs again, a5, completion
  const r3 = startChild('resume');
  const { code } = await r3.exited;
  expect({ code, stderr: code === 0 ? '' : r3.err() }).toEqual({ code: 0, stderr: '' });
  const final = JSON.parse(r3.out().trim().split('\n').pop() as string) as {
    final: { runtimeStatus: string; output: unknown };
  };
  expect(final.final.runtimeStatus).toBe('Completed');
  expect(final.final.output).toEqual(['a1 ok', 'go!', 'a2 ok', 'a3 ok', 'a4 ok', 'a5 ok']);

  for (const step of ['a1', 'a2', 'a4', 'a5']) {
    expect({ step, starts: countOf(`start ${step}`), dones: countOf(`done ${step}`) }).toEqual({
      step,
      starts: 1,
      dones: 1,
    });
  }
  // a3 was in flight at the second kill: it ran again (at-least-once) and completed once
  expect(countOf('start a3')).toBe(2);
  expect(countOf('done a3')).toBe(1);
});
