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
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
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
}): Promise<AzuriteHandle> {
  mkdirSync(opts.dir, { recursive: true });
  const accountKey = azuriteAccountKey(opts.keyFolder ?? opts.dir);
  const port = opts.port || (await freePort());
  const extraPorts = opts.queueAndTable ? [await freePort(), await freePort()] : [];
  const extraArgs = opts.queueAndTable
    ? [
        '--queueHost',
        '127.0.0.1',
        '--queuePort',
        String(extraPorts[0]),
        '--tableHost',
        '127.0.0.1',
        '--tablePort',
        String(extraPorts[1]),
      ]
    : [];
  // Azurite runs in a child that watches its stdin: when the parent dies (even by SIGKILL) the pipe
  // closes and the child stops itself with SIGTERM (so its metadata is flushed) — no orphaned Azurite.
  const watchdog = `const m=process.argv[1];process.argv=[process.argv[0],m,...process.argv.slice(2)];process.stdin.on('end',()=>process.kill(process.pid,'SIGTERM'));process.stdin.on('error',()=>process.kill(process.pid,'SIGTERM'));process.stdin.resume();require(m);`;
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '-e',
      watchdog,
      azuriteBin(opts.queueAndTable),
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      String(port),
      ...extraArgs,
      '--location',
      opts.dir,
      '--skipApiVersionCheck',
      '--loose',
      '--disableTelemetry',
      '--silent',
    ],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, AZURITE_ACCOUNTS: `${AZURITE_ACCOUNT}:${accountKey}` },
    },
  );
  let output = '';
  child.stdout?.on('data', (d) => (output += d.toString()));
  child.stderr?.on('data', (d) => (output += d.toString()));
  const blobEndpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  const deadline = Date.now() + (opts.timeoutMs ?? 15000);
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`[AZURITE.START_FAILED] Azurite exited with ${child.exitCode}: ${output.slice(-500)}`);
    try {
      const res = await fetch(`${blobEndpoint}?comp=list`, { signal: AbortSignal.timeout(1000) });
      if (res.status > 0) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`[AZURITE.START_FAILED] Azurite did not answer on port ${port}: ${output.slice(-500)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const queueEndpoint = opts.queueAndTable
    ? `http://127.0.0.1:${extraPorts[0]}/${AZURITE_ACCOUNT}`
    : undefined;
  const tableEndpoint = opts.queueAndTable
    ? `http://127.0.0.1:${extraPorts[1]}/${AZURITE_ACCOUNT}`
    : undefined;
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
