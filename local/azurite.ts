/**
 * Azurite (Blob service) as a child process, pinned to 3.35.x (3.36+ needs Node 22).
 * Data lives under `dir`; stopped with SIGTERM so its metadata is flushed.
 */
import { spawn, ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';

/** Azurite's well-known development account (public, documented by Microsoft; not a secret). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteHandle {
  blobEndpoint: string;
  port: number;
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

function azuriteBin(): string {
  const pkg = require.resolve('azurite/package.json');
  return path.join(path.dirname(pkg), 'dist', 'src', 'blob', 'main.js');
}

export async function startAzurite(opts: { dir: string; port?: number; timeoutMs?: number }): Promise<AzuriteHandle> {
  mkdirSync(opts.dir, { recursive: true });
  const port = opts.port || (await freePort());
  // Azurite runs in a child that watches its stdin: when the parent dies (even by SIGKILL) the pipe
  // closes and the child stops itself with SIGTERM (so its metadata is flushed) — no orphaned Azurite.
  const watchdog = `const m=process.argv[1];process.argv=[process.argv[0],m,...process.argv.slice(2)];process.stdin.on('end',()=>process.kill(process.pid,'SIGTERM'));process.stdin.on('error',()=>process.kill(process.pid,'SIGTERM'));process.stdin.resume();require(m);`;
  const child: ChildProcess = spawn(
    process.execPath,
    ['-e', watchdog, azuriteBin(), '--blobHost', '127.0.0.1', '--blobPort', String(port), '--location', opts.dir, '--skipApiVersionCheck', '--loose', '--disableTelemetry', '--silent'],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (d) => (output += d.toString()));
  child.stderr?.on('data', (d) => (output += d.toString()));
  const blobEndpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  const deadline = Date.now() + (opts.timeoutMs ?? 15000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`[AZURITE.START_FAILED] Azurite exited with ${child.exitCode}: ${output.slice(-500)}`);
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
  return {
    blobEndpoint,
    port,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${blobEndpoint};`,
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
