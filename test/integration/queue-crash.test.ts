/**
 * A host process killed with SIGKILL loses nothing: a child process (test/fixtures/queue/crash-worker.js,
 * running the compiled dist/local/queue.js) sends and consumes messages and is killed mid-way; after a
 * restart every message is delivered, none is lost, and completed ones are not delivered again.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalQueue } from '../../local/queue';

const root = path.resolve(__dirname, '..', '..');
const worker = path.join(root, 'test', 'fixtures', 'queue', 'crash-worker.js');
const QUEUE = 'deploy-requests';
const N = 60;

let dir: string;
const children = new Set<ChildProcess>();

function ensureBuilt(): void {
  const out = path.join(root, 'dist', 'local', 'queue.js');
  const sources = ['local/queue.ts', 'local/queue-rest.ts'].map(
    (f) => fs.statSync(path.join(root, f)).mtimeMs,
  );
  const fresh =
    fs.existsSync(out) &&
    fs.statSync(out).mtimeMs >= Math.max(...sources) &&
    fs.existsSync(path.join(root, 'dist', 'local', 'queue-rest.js'));
  // `npm test` builds first; a lone `npx jest` on this file builds here (tsc emits even if other files have type errors).
  if (!fresh) {
    try {
      execFileSync(
        process.execPath,
        [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
        { cwd: root, stdio: 'pipe' },
      );
    } catch {
      /* type errors elsewhere still emit; checked below */
    }
  }
  if (!fs.existsSync(out))
    throw new Error('dist/local/queue.js is missing: run `npx tsc -p tsconfig.build.json`');
}

function run(
  args: string[],
  env: Record<string, string> = {},
): {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
} {
  const child = spawn(process.execPath, [worker, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.add(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>(
    (resolve) =>
      child.on('exit', (code, signal) => {
        children.delete(child);
        resolve({ code, signal, stderr });
      }),
  );
  return { child, exited };
}

function lines(file: string): string[] {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

async function waitForLine(
  file: string,
  pred: (l: string[]) => boolean,
  exited: Promise<unknown>,
): Promise<void> {
  let done = false;
  void exited.then(() => (done = true));
  for (;;) {
    if (pred(lines(file))) return;
    if (done) throw new Error(`worker exited before the expected point; log:\n${lines(file).join('\n')}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const idNum = (id: string) => Number(id.slice(2));
const sessionOf = (i: number) => (i % 4 === 0 ? undefined : `s-${i % 3}`);

beforeAll(() => {
  ensureBuilt();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'queue-crash-'));
});

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a sender killed mid-way keeps every acknowledged message; resending after restart adds no duplicates', async () => {
  const db = path.join(dir, 'send.db');
  const log1 = path.join(dir, 'send-1.log');
  const first = run(['send', db, log1, String(N)], { SEND_PAUSE: '1' });
  await waitForLine(log1, (l) => l.length >= N / 3, first.exited);
  first.child.kill('SIGKILL');
  const r1 = await first.exited;
  expect(r1.signal).toBe('SIGKILL');
  const acknowledged = lines(log1).map((l) => l.split(' ')[1]);
  expect(acknowledged.length).toBeLessThan(N); // it really died before the end

  const q = new LocalQueue({ dbPath: db });
  try {
    const present = q.peek(QUEUE).map((m) => m.messageId);
    for (const id of acknowledged) expect(present).toContain(id);
  } finally {
    q.close();
  }

  // a retrying sender resends everything with the same message ids
  const log2 = path.join(dir, 'send-2.log');
  const second = run(['send', db, log2, String(N)]);
  const r2 = await second.exited;
  expect(r2).toMatchObject({ code: 0 });
  const dups = lines(log2)
    .filter((l) => l.startsWith('dup '))
    .map((l) => l.split(' ')[1]);
  const present = lines(log2).length;
  expect(present).toBe(N);
  expect(new Set(dups).size).toBeGreaterThanOrEqual(acknowledged.length);

  const q2 = new LocalQueue({ dbPath: db });
  try {
    const ids = q2.peek(QUEUE).map((m) => m.messageId);
    expect(ids.length).toBe(N);
    expect(new Set(ids)).toEqual(new Set(Array.from({ length: N }, (_, i) => `m-${i}`)));
  } finally {
    q2.close();
  }
});

test('a consumer SIGKILLed mid-way: after restart every message is delivered once more at most, none lost, completed ones not again', async () => {
  const db = path.join(dir, 'consume.db');
  const sendLog = path.join(dir, 'c-send.log');
  const s = run(['send', db, sendLog, String(N)]);
  expect(await s.exited).toMatchObject({ code: 0 });

  // phase 1: consume until the 25th handler call hangs, then SIGKILL
  const log1 = path.join(dir, 'consume-1.log');
  const c1 = run(['consume', db, log1], { HANG_AT: '25' });
  await waitForLine(log1, (l) => l.some((x) => x.startsWith('hang ')), c1.exited);
  c1.child.kill('SIGKILL');
  expect((await c1.exited).signal).toBe('SIGKILL');
  const phase1 = lines(log1);
  const hung = phase1.filter((l) => l.startsWith('hang ')).map((l) => l.split(' ')[1]);
  expect(hung.length).toBeGreaterThanOrEqual(1);

  // what is left in the file after the crash: the hung messages were locked by the dead process; the
  // next process that opens the file releases those locks at once (their owner is gone)
  const all = Array.from({ length: N }, (_, i) => `m-${i}`);
  const inspect = new LocalQueue({ dbPath: db });
  let remaining: string[];
  try {
    const left = inspect.peek(QUEUE);
    remaining = left.map((m) => m.messageId);
    for (const id of hung) expect(left.find((m) => m.messageId === id)?.state).toBe('active');
    expect(inspect.counts(QUEUE).deadLetter).toBe(0);
  } finally {
    inspect.close();
  }
  const completed = all.filter((id) => !remaining.includes(id));
  expect(completed.length).toBeGreaterThan(0);
  expect(remaining.length).toBeGreaterThan(0);

  // phase 2: restart at once (well within the worker's 30 s lock duration); runs until the queue is empty
  const log2 = path.join(dir, 'consume-2.log');
  const c2 = run(['consume', db, log2]);
  const r2 = await c2.exited;
  expect(r2.stderr).toBe('');
  expect(r2.code).toBe(0);
  const phase2 = lines(log2);
  expect(phase2[phase2.length - 1]).toBe('exit');
  const starts2 = phase2.filter((l) => l.startsWith('start ')).map((l) => l.split(' '));
  const done2 = phase2.filter((l) => l.startsWith('done ')).map((l) => l.split(' ')[1]);

  // every message left after the crash is handled exactly once now; completed ones never again
  expect([...done2].sort()).toEqual([...remaining].sort());
  expect(starts2.map((s2) => s2[1]).sort()).toEqual([...remaining].sort());
  for (const id of completed) expect(done2).not.toContain(id);
  expect(new Set([...completed, ...done2])).toEqual(new Set(all));
  // the messages that were in flight at the crash come back with their delivery count incremented
  for (const id of hung) expect(starts2.find((s2) => s2[1] === id)?.[3]).toBe('2');

  // session order held across the crash: per session, first deliveries in send order
  const order = [...phase1.filter((l) => l.startsWith('start ')).map((l) => l.split(' ')), ...starts2];
  const seen = new Set<string>();
  const perSession = new Map<string, number[]>();
  for (const [, id] of order) {
    if (seen.has(id)) continue;
    seen.add(id);
    const sess = sessionOf(idNum(id));
    if (!sess) continue;
    perSession.set(sess, [...(perSession.get(sess) ?? []), idNum(id)]);
  }
  expect(perSession.size).toBe(3);
  for (const nums of perSession.values()) expect(nums).toEqual([...nums].sort((a, b) => a - b));

  const after = new LocalQueue({ dbPath: db });
  try {
    expect(after.counts(QUEUE)).toEqual({ active: 0, scheduled: 0, locked: 0, deadLetter: 0 });
  } finally {
    after.close();
  }
});
