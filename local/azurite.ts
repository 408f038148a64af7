/**
 * Azurite (Blob service) as a child process, pinned to 3.35.x (3.36+ needs Node 22).
 * Data lives under `dir`; stopped with SIGTERM so its metadata is flushed.
 *
 * Never with Microsoft's public development key: Azurite runs with one account (`AZURITE_ACCOUNTS`,
 * which disables the built-in key) whose key is random per data folder, generated once and kept 0600
 * in `storage-key.json` of that folder (`azuriteAccountKey(folder)`; the embedded host keeps it beside
 * its other generated secrets). Any process that wants the local storage needs that file.
 */
import { spawn, ChildProcess } from 'node:child_process';
import { openSync, closeSync, rmSync, statSync } from 'node:fs';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';

/** The account name (the one Azurite's tools expect); its key is never the public development key. */
export const AZURITE_ACCOUNT = 'devstoreaccount1';

/** The random account key of a data folder (`<folder>/storage-key.json`, 0600), created on first use. */
export function azuriteAccountKey(folder: string): string {
  const file = path.join(folder, 'storage-key.json');
  if (existsSync(file)) {
    let key: unknown;
    try {
      key = (JSON.parse(readFileSync(file, 'utf8')) as { accountKey?: unknown }).accountKey;
    } catch (err) {
      throw new Error(
        `[HOST.BAD_DATA] ${file} is not valid JSON (${(err as Error).message}); fix or delete it`,
      );
    }
    if (typeof key !== 'string' || Buffer.from(key, 'base64').length < 32)
      throw new Error(
        `[HOST.BAD_DATA] ${file} holds no usable accountKey (base64, 32 bytes or more); delete it to get a new one`,
      );
    return key;
  }
  mkdirSync(folder, { recursive: true });
  const key = randomBytes(64).toString('base64');
  writeFileSync(file, JSON.stringify({ accountName: AZURITE_ACCOUNT, accountKey: key }, null, 2) + '\n', {
    mode: 0o600,
    flag: 'wx',
  });
  return key;
}

export interface AzuriteHandle {
  blobEndpoint: string;
  /** set when started with `queueAndTable` (the real Durable Task engine's storage) */
  queueEndpoint?: string;
  tableEndpoint?: string;
  port: number;
  accountKey: string;
  connectionString: string;
  /** supervised: the supervisor's pid (its own process group) */
  supervisorPid?: number;
  /** supervised: true when this start found the storage already running (the host restarted) and re-attached */
  attached?: boolean;
  stop(): Promise<void>;
}

/**
 * A port free now, for a server that starts a moment later (Azurite, a registry, sshd, Odoo's published
 * ports). Chosen at random in the 12,000 ports just below the kernel's ephemeral range
 * (`net.ipv4.ip_local_port_range`): the kernel never hands those out itself, so no outgoing connection and
 * no server bound to port 0 anywhere on the machine takes the port in between — only another explicit
 * choice can, which is rare among 12,000 and which Azurite's start retries (startAzurite). A port the OS
 * picked (port 0) is in that ephemeral range, where CI's thousands of connections compete for it. Without
 * that much room below the range (or without /proc): the OS's choice.
 *
 * Processes that choose ports side by side for long-lived servers can each take a slice of that room
 * (`LOCAL_PORT_SLICE=i/n`, slice i of n): `npm test` gives its two jest processes one half each, so a
 * port the sandbox chose for a VM's Odoo (bound again at every deploy's start, free while it is stopped)
 * is never the one the other process's Azurite or sshd picks (most likely what a fresh-clone CI run saw:
 * "bind: address already in use" starting the sandbox's PROD web on the port just chosen for it). Within a process, a port returned
 * is not returned again while fewer than half the ports of the room were handed out.
 */
export async function freePort(rangeFile?: string): Promise<number> {
  const low = ephemeralRange(rangeFile)[0];
  const room = Math.max(1024, low - 12000);
  const [from, to] = portSlice(room, low, process.env.LOCAL_PORT_SLICE);
  if (to - from >= 500)
    for (let i = 0; i < 50; i++) {
      const port = from + randomInt(to - from);
      // not one this process handed out before (Azurite's three ports are chosen one after another, all
      // still free until it starts; a sandbox VM's port is free while its container is stopped)
      if (handedOut.has(port) || !(await canListen(port))) continue;
      handedOut.add(port);
      // the oldest are forgotten once half the room was handed out (a Set keeps insertion order)
      while (handedOut.size > (to - from) / 2) handedOut.delete(handedOut.values().next().value!);
      return port;
    }
  return osPort();
}

/** ports freePort returned in this process, oldest first */
const handedOut = new Set<number>();

/** The part [from, to) of the ports [room, low) that LOCAL_PORT_SLICE (`i/n`) gives this process. */
export function portSlice(room: number, low: number, slice: string | undefined): [number, number] {
  if (slice === undefined || slice === '') return [room, low];
  const m = /^(\d+)\/(\d+)$/.exec(slice.trim());
  const i = m ? Number(m[1]) : NaN;
  const n = m ? Number(m[2]) : NaN;
  if (!(n >= 1 && n <= 16 && i < n))
    throw new Error(
      `[CONFIG.INVALID] LOCAL_PORT_SLICE must be i/n with 0 <= i < n <= 16 (slice i of n of the local ports), got ${JSON.stringify(slice)}`,
    );
  const size = Math.floor((low - room) / n);
  return [room + i * size, room + (i + 1) * size];
}

/** The kernel's own range of ports (outgoing connections, bind to port 0); Linux's default if unreadable. */
export function ephemeralRange(file = '/proc/sys/net/ipv4/ip_local_port_range'): [number, number] {
  try {
    const [low, high] = readFileSync(file, 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high) && low > 0 && high >= low) return [low, high];
  } catch {
    /* not Linux */
  }
  return [32768, 60999];
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

function osPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function azuriteBin(all = false): string {
  const pkg = require.resolve('azurite/package.json');
  return path.join(path.dirname(pkg), 'dist', 'src', ...(all ? ['azurite.js'] : ['blob', 'main.js']));
}

/**
 * `keyFolder`: where the account key is kept (default `dir`, the data folder itself; the embedded host
 * passes its own data folder, where its generated secrets are).
 */
export async function startAzurite(opts: {
  dir: string;
  port?: number;
  timeoutMs?: number;
  keyFolder?: string;
  /** also the Queue and Table services (on free ports), which the Durable Task extension's provider needs */
  queueAndTable?: boolean;
  /**
   * Azurite under its own supervisor process (its own process group: a crash of the host's group does not
   * reach it), which restarts Azurite if it dies and which a restarted host re-attaches to (same ports, same
   * in-memory state). See startSupervisedAzurite.
   */
  supervised?: boolean;
  /** supervised: how long the supervisor keeps Azurite up after the host that started it is gone (default 10 min) */
  orphanGraceMs?: number;
  /** how a free port is chosen (default: the OS's choice, freePort) */
  pickPort?: () => Promise<number>;
}): Promise<AzuriteHandle> {
  if (opts.supervised) return startSupervisedAzurite(opts);
  mkdirSync(opts.dir, { recursive: true });
  // a supervised Azurite left on this folder (a crashed host, then a plain start on its folder): two
  // Azurites must never share a folder — stop it first (SIGTERM: it saves)
  await stopLeftoverSupervisor(opts.dir);
  const accountKey = azuriteAccountKey(opts.keyFolder ?? opts.dir);
  const pick = opts.pickPort ?? freePort;
  for (let attempt = 1; ; attempt++) {
    const port = opts.port || (await pick());
    const extraPorts = opts.queueAndTable ? [await pick(), await pick()] : [];
    const started = await startPlainAzurite(opts, accountKey, port, extraPorts);
    if (!('taken' in started)) return started;
    // another process bound a port between its choice and Azurite's bind: choose again (not a fixed port)
    if (opts.port === started.taken || attempt >= START_ATTEMPTS)
      throw new Error(
        `[AZURITE.START_FAILED] Azurite could not listen on port ${started.taken}: another process uses it` +
          (opts.port === started.taken ? '' : ` (${attempt} attempts, each on newly chosen free ports)`),
      );
  }
}

/** Azurite's script and arguments: Blob on `blobPort`, Queue and Table on `queueAndTable` (all on 127.0.0.1). */
function azuriteCommand(dir: string, blobPort: number, queueAndTable?: number[]): string[] {
  return [
    azuriteBin(queueAndTable !== undefined),
    '--blobHost',
    '127.0.0.1',
    '--blobPort',
    String(blobPort),
    ...(queueAndTable
      ? [
          '--queueHost',
          '127.0.0.1',
          '--queuePort',
          String(queueAndTable[0]),
          '--tableHost',
          '127.0.0.1',
          '--tablePort',
          String(queueAndTable[1]),
        ]
      : []),
    '--location',
    dir,
    '--skipApiVersionCheck',
    '--loose',
    '--disableTelemetry',
    '--silent',
  ];
}

/** One start of the plain Azurite child; `taken`: it exited because one of its ports was in use. */
async function startPlainAzurite(
  opts: { dir: string; timeoutMs?: number; queueAndTable?: boolean },
  accountKey: string,
  port: number,
  extraPorts: number[],
): Promise<AzuriteHandle | { taken: number }> {
  // Azurite runs in a child that watches its stdin: when the parent dies (even by SIGKILL) the pipe
  // closes and the child stops itself with SIGTERM (so its metadata is flushed) — no orphaned Azurite.
  const watchdog = `const m=process.argv[1];process.argv=[process.argv[0],m,...process.argv.slice(2)];process.stdin.on('end',()=>process.kill(process.pid,'SIGTERM'));process.stdin.on('error',()=>process.kill(process.pid,'SIGTERM'));process.stdin.resume();require(m);`;
  const child: ChildProcess = spawn(
    process.execPath,
    ['-e', watchdog, ...azuriteCommand(opts.dir, port, opts.queueAndTable ? extraPorts : undefined)],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, AZURITE_ACCOUNTS: `${AZURITE_ACCOUNT}:${accountKey}` },
    },
  );
  let output = '';
  child.stdout?.on('data', (d) => (output += d.toString()));
  child.stderr?.on('data', (d) => (output += d.toString()));
  const closed = new Promise((r) => child.once('close', r)); // its output read to the end
  const endpoint = (p: number) => `http://127.0.0.1:${p}/${AZURITE_ACCOUNT}`;
  const blobEndpoint = endpoint(port);
  const queueEndpoint = opts.queueAndTable ? endpoint(extraPorts[0]) : undefined;
  const tableEndpoint = opts.queueAndTable ? endpoint(extraPorts[1]) : undefined;
  const deadline = Date.now() + (opts.timeoutMs ?? 15000);
  // Azurite starts its services one after another (blob, queue, table): ready when every one answers
  while (!(await allAnswer([blobEndpoint, queueEndpoint, tableEndpoint]))) {
    if (child.exitCode !== null) {
      await closed;
      const taken = portInUse(output);
      if (taken) return { taken };
      throw new Error(`[AZURITE.START_FAILED] Azurite exited with ${child.exitCode}: ${output.slice(-500)}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`[AZURITE.START_FAILED] Azurite did not answer on port ${port}: ${output.slice(-500)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    blobEndpoint,
    queueEndpoint,
    tableEndpoint,
    port,
    accountKey,
    connectionString:
      `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${accountKey};BlobEndpoint=${blobEndpoint};` +
      (opts.queueAndTable ? `QueueEndpoint=${queueEndpoint};TableEndpoint=${tableEndpoint};` : ''),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

/**
 * How many times a start chooses new free ports when Azurite finds one of them taken: a port is free when
 * chosen, but any process on the machine can bind it before Azurite does (seen in CI: the Queue service's
 * port taken, Azurite exiting after its Blob service answered, the real engine's host unable to start).
 */
export const START_ATTEMPTS = 3;

/** The port of `listen EADDRINUSE: address already in use 127.0.0.1:PORT` in Azurite's output, if any. */
export function portInUse(output: string): number | undefined {
  const m = /EADDRINUSE\b[^\n]*?:(\d+)\s*$/m.exec(output);
  return m ? Number(m[1]) : undefined;
}

/** What a supervised Azurite leaves in its folder: who supervises it, on which ports, for which host. */
export interface SupervisorState {
  supervisorPid: number;
  hostPid: number;
  blobPort: number;
  queuePort?: number;
  tablePort?: number;
  startedAt: string;
}

export const SUPERVISOR_FILE = 'supervisor.json';

/**
 * The supervisor (plain Node, no dependencies: it runs from sources and from dist alike). It starts
 * Azurite as its child and starts it again (same ports) if it exits while not asked to stop; SIGTERM stops
 * Azurite with SIGTERM, which saves its metadata, then exits. Every second it reads the host's pid from
 * the state file (a restarted host writes its own): when no host has been alive for AZ_SUP_GRACE_MS it
 * stops, so a host that never comes back leaves no Azurite behind.
 */
const SUPERVISOR = `
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const [bin, ...args] = process.argv.slice(1);
const stateFile = process.env.AZ_SUP_STATE, grace = Number(process.env.AZ_SUP_GRACE_MS);
let child, stopping = false, deadSince = 0;
const say = (m) => process.stderr.write(new Date().toISOString() + ' azurite-supervisor: ' + m + '\\n');
function start() {
  child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  child.on('exit', (code, signal) => {
    if (stopping) process.exit(0);
    say('azurite exited (' + (signal || code) + '); starting it again');
    setTimeout(start, 500);
  });
}
function stop() {
  if (stopping) return;
  stopping = true;
  if (!child || child.exitCode !== null || child.signalCode !== null) process.exit(0);
  child.kill('SIGTERM');
  setTimeout(() => { child.kill('SIGKILL'); process.exit(0); }, 15000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setInterval(() => {
  let hostPid = 0;
  try { hostPid = JSON.parse(fs.readFileSync(stateFile, 'utf8')).hostPid; } catch { return stop(); }
  let alive = true;
  try { process.kill(hostPid, 0); } catch { alive = false; }
  if (alive) { deadSince = 0; return; }
  deadSince = deadSince || Date.now();
  if (Date.now() - deadSince > grace) { say('no host for ' + grace + ' ms; stopping'); stop(); }
}, 1000);
start();
`;

/** Stops the supervised Azurite recorded in `dir` (if its supervisor still runs) and forgets it. */
export async function stopLeftoverSupervisor(dir: string): Promise<void> {
  const stateFile = path.join(dir, SUPERVISOR_FILE);
  if (!existsSync(stateFile)) return;
  let pid = 0;
  try {
    pid = (JSON.parse(readFileSync(stateFile, 'utf8')) as SupervisorState).supervisorPid;
  } catch {
    /* unreadable: nothing to stop */
  }
  if (pid && pidAlive(pid)) {
    process.kill(pid, 'SIGTERM');
    const until = Date.now() + 20000;
    while (pidAlive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  }
  rmSync(stateFile, { force: true });
}

/** SIGKILL to the process group `pid` leads (the supervisor was started detached: its own group) */
function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/**
 * Whether `pid` is a live supervisor of the Azurite in `dir` (its command line names the folder), not
 * another process that got the pid after the supervisor died. Without /proc (not Linux): alive is enough.
 */
export function supervisesFolder(pid: number, dir: string): boolean {
  if (!pid || !pidAlive(pid)) return false;
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return !existsSync('/proc/self/cmdline');
  }
  return cmdline.split('\0').includes('-e') && onLocation(cmdline, dir);
}

/** Whether a process command line (NUL-separated, as /proc gives it) names `--location <dir>`. */
function onLocation(cmdline: string, dir: string): boolean {
  const args = cmdline.split('\0');
  const at = args.indexOf('--location');
  return at > 0 && path.resolve(args[at + 1] ?? '') === path.resolve(dir);
}

/** Whether a process (not a zombie: its command line is empty) runs with `--location <dir>`: a supervisor or its Azurite. */
function runningOnFolder(dir: string): boolean {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return false; // not Linux: nothing to look at
  }
  return entries.some((e) => {
    try {
      return onLocation(readFileSync(`/proc/${e}/cmdline`, 'utf8'), dir);
    } catch {
      return false; // gone meanwhile
    }
  });
}

const pidAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Whether a service listens at `endpoint`: any HTTP answer (Blob, Queue and Table all answer a list). */
async function answers(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}?comp=list`, { signal: AbortSignal.timeout(2000) });
    await res.body?.cancel();
    return res.status > 0;
  } catch {
    return false;
  }
}

/** Every endpoint given answers (`undefined`: a service not started). */
async function allAnswer(endpoints: Array<string | undefined>): Promise<boolean> {
  for (const e of endpoints) if (e && !(await answers(e))) return false;
  return true;
}

/** The supervisor's log from byte `from` on ('' when there is none yet). */
function readLog(file: string, from: number): string {
  try {
    return readFileSync(file).subarray(from).toString('utf8');
  } catch {
    return '';
  }
}

/** Starts the supervisor of `opts.dir`'s Azurite on these ports (detached: its own process group). */
function spawnSupervisor(
  opts: { dir: string; queueAndTable?: boolean; orphanGraceMs?: number },
  accountKey: string,
  stateFile: string,
  logFile: string,
  blobPort: number,
  queuePort: number | undefined,
  tablePort: number | undefined,
): SupervisorState {
  const args = azuriteCommand(opts.dir, blobPort, opts.queueAndTable ? [queuePort!, tablePort!] : undefined);
  const state: SupervisorState = {
    supervisorPid: 0,
    hostPid: process.pid,
    blobPort,
    queuePort,
    tablePort,
    startedAt: new Date().toISOString(),
  };
  writeFileSync(stateFile, JSON.stringify(state, null, 2) + '\n');
  const logFd = openSync(logFile, 'a');
  const child = spawn(process.execPath, ['-e', SUPERVISOR, ...args], {
    detached: true, // its own process group: a kill of the host's group does not reach the storage
    stdio: ['ignore', logFd, logFd],
    env: {
      ...process.env,
      AZURITE_ACCOUNTS: `${AZURITE_ACCOUNT}:${accountKey}`,
      AZ_SUP_STATE: stateFile,
      AZ_SUP_GRACE_MS: String(opts.orphanGraceMs ?? 10 * 60 * 1000),
    },
  });
  closeSync(logFd);
  child.unref();
  state.supervisorPid = child.pid!;
  return state;
}

/**
 * Azurite as its own supervised process (see SUPERVISOR): detached from the host's process group, so
 * that `kill -9` of the host's group (what a crash of the host does) leaves the storage running with
 * everything it acknowledged; the restarted host finds `<dir>/supervisor.json`, checks that the supervisor
 * of this folder is alive, and re-attaches (same ports and key), waiting for Azurite to answer. `stop()`
 * (a clean host stop) stops the supervisor, which stops Azurite with SIGTERM (metadata saved). A crash
 * of the MACHINE still loses what Azurite had not saved yet: its metadata (LokiJS) is saved every 5 s
 * (fixed in Azurite 3.35), see docs/durable-local-engine.md for the measured window.
 */
export async function startSupervisedAzurite(opts: {
  dir: string;
  port?: number;
  timeoutMs?: number;
  keyFolder?: string;
  queueAndTable?: boolean;
  orphanGraceMs?: number;
  pickPort?: () => Promise<number>;
}): Promise<AzuriteHandle> {
  mkdirSync(opts.dir, { recursive: true });
  const accountKey = azuriteAccountKey(opts.keyFolder ?? opts.dir);
  const stateFile = path.join(opts.dir, SUPERVISOR_FILE);
  const endpoint = (port: number) => `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  let state: SupervisorState | undefined;
  if (existsSync(stateFile)) {
    try {
      state = JSON.parse(readFileSync(stateFile, 'utf8')) as SupervisorState;
    } catch {
      state = undefined;
    }
    // A live supervisor of this folder is re-attached even when its Azurite does not answer at once
    // (restarting, or slow on a loaded machine: the wait below gives it the start timeout). Never a second
    // Azurite on the same folder beside it: that one would load the last save, not what the running one
    // holds (a fresh-clone CI run once did exactly that after a kill -9, and the restarted host failed).
    if (state && !supervisesFolder(state.supervisorPid, opts.dir)) state = undefined;
    else if (state && opts.queueAndTable && !(state.queuePort && state.tablePort)) {
      await stopLeftoverSupervisor(opts.dir); // a blob-only Azurite: the real engine needs all three
      state = undefined;
    }
  }
  const attached = state !== undefined;
  const logFile = path.join(opts.dir, 'supervisor.log');
  const pick = opts.pickPort ?? freePort;
  for (let attempt = 1; ; attempt++) {
    // what the log held before this attempt: its EADDRINUSE lines are not this attempt's
    const logFrom = existsSync(logFile) ? statSync(logFile).size : 0;
    if (state) state = { ...state, hostPid: process.pid };
    else {
      const blobPort = opts.port || (await pick());
      const [queuePort, tablePort] = opts.queueAndTable ? [await pick(), await pick()] : [];
      state = spawnSupervisor(opts, accountKey, stateFile, logFile, blobPort, queuePort, tablePort);
    }
    writeFileSync(stateFile, JSON.stringify(state, null, 2) + '\n');
    const endpoints = [state.blobPort, state.queuePort, state.tablePort].map((p) =>
      p ? endpoint(p) : undefined,
    );
    const deadline = Date.now() + (opts.timeoutMs ?? 15000);
    let failure: string | undefined;
    let taken: number | undefined;
    // Azurite starts its services one after another (blob, queue, table): ready when every one answers
    while (!(await allAnswer(endpoints))) {
      // a port of a first start taken by another process: Azurite exits at once, and the supervisor would
      // restart it on the same ports for ever. A re-attached Azurite keeps its ports (its clients know them).
      taken = attached ? undefined : portInUse(readLog(logFile, logFrom));
      if (taken) failure = `could not listen on port ${taken}: another process uses it`;
      else if (!pidAlive(state.supervisorPid)) failure = `its supervisor exited`;
      else if (Date.now() > deadline)
        failure = `did not answer on port ${endpoints
          .filter(Boolean)
          .map((e) => new URL(e!).port)
          .join(', ')} within ${opts.timeoutMs ?? 15000} ms`;
      if (failure) {
        // the supervisor and its Azurite (one process group): nothing is left running on this folder —
        // waited for, not only signalled (a CI run once looked a moment after the error and found one)
        if (pidAlive(state.supervisorPid)) killGroup(state.supervisorPid);
        for (const until = Date.now() + 5000; runningOnFolder(opts.dir) && Date.now() < until; )
          await new Promise((r) => setTimeout(r, 20));
        rmSync(stateFile, { force: true });
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!failure) break;
    // a chosen port taken between its choice and Azurite's bind: choose again (never a port the caller fixed)
    if (taken && taken !== opts.port && attempt < START_ATTEMPTS) {
      state = undefined;
      continue;
    }
    throw new Error(
      `[AZURITE.START_FAILED] supervised Azurite ${failure}` +
        (taken && taken !== opts.port ? ` (${attempt} attempts, each on newly chosen free ports)` : '') +
        `: ${readLog(logFile, 0).slice(-500)}`,
    );
  }
  const blobEndpoint = endpoint(state.blobPort);
  const queueEndpoint = state.queuePort ? endpoint(state.queuePort) : undefined;
  const tableEndpoint = state.tablePort ? endpoint(state.tablePort) : undefined;
  const supervisorPid = state.supervisorPid;
  return {
    blobEndpoint,
    queueEndpoint,
    tableEndpoint,
    port: state.blobPort,
    accountKey,
    supervisorPid,
    attached,
    connectionString:
      `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${accountKey};BlobEndpoint=${blobEndpoint};` +
      (queueEndpoint ? `QueueEndpoint=${queueEndpoint};TableEndpoint=${tableEndpoint};` : ''),
    stop: async () => {
      if (!pidAlive(supervisorPid)) return;
      process.kill(supervisorPid, 'SIGTERM');
      const until = Date.now() + 20000;
      while (pidAlive(supervisorPid) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      if (pidAlive(supervisorPid)) process.kill(supervisorPid, 'SIGKILL');
      rmSync(stateFile, { force: true });
    },
  };
}
