/**
 * A real OpenSSH sshd on loopback for tests (no mock): its own config, host key and authorized_keys in a
 * temp folder, listening on 127.0.0.1:<free port>.
 *
 * sshd insists on its privilege-separation folder /run/sshd. Rather than touching the machine's /run, it
 * runs in a private mount namespace (`unshare -m`) where /run is a fresh tmpfs; every entry of the real
 * /run is linked back into it (so e.g. /run/docker.sock stays reachable from sessions), plus an empty
 * /run/sshd. `StrictModes no` because keys live under /tmp. Needs root (to unshare and to run sshd);
 * `.ci/run` installs openssh-server.
 */
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../local/azurite';

export const SSHD_BIN = process.env.SSHD_BIN || '/usr/sbin/sshd';

export interface SshdOptions {
  /** folder for config/keys/logs; a temp dir (removed on stop) when not given */
  dir?: string;
  /** authorized_keys lines (e.g. `generateKeyPair().publicKey`) */
  authorizedKeys: string[];
  /** the only user allowed in (default root); must exist on this machine */
  user?: string;
  /** environment set for every session (sshd `SetEnv`) */
  env?: Record<string, string>;
  /** sshd `ForceCommand`: the client's command is then in $SSH_ORIGINAL_COMMAND */
  forceCommand?: string;
  /** port (default: a free one) */
  port?: number;
  /**
   * hide the user's ~/.bashrc from sessions (default true): bash sources it for every command run by
   * sshd, and a slow one (pyenv init here) adds seconds per command. Done with a bind mount inside
   * sshd's private mount namespace; the real file is untouched.
   */
  hideBashrc?: boolean;
}

export interface SshdHandle {
  host: '127.0.0.1';
  port: number;
  /** `SHA256:...` fingerprint of the host key, as `ssh-keygen -l` prints it */
  hostKeyFingerprint: string;
  /** host public key line (`ssh-ed25519 AAAA... comment`) */
  hostPublicKey: string;
  dir: string;
  /** sshd's own log so far (sshd -e) */
  log(): string;
  stop(): Promise<void>;
}

export interface KeyPair {
  /** OpenSSH private key (PEM armour `BEGIN OPENSSH PRIVATE KEY`), generated at test time */
  privateKey: string;
  /** authorized_keys line */
  publicKey: string;
}

/** A fresh ed25519 key pair made by ssh-keygen (keys exist only for the test run; never committed). */
export function generateKeyPair(comment = 'test@odoo-mta'): KeyPair {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sshkey-'));
  try {
    const file = path.join(dir, 'id');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], {
      stdio: 'ignore',
    });
    return { privateKey: readFileSync(file, 'utf8'), publicKey: readFileSync(file + '.pub', 'utf8').trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `SHA256:...` fingerprint of a public key line, via ssh-keygen -l. */
export function fingerprintOf(publicKeyLine: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sshfp-'));
  try {
    const f = path.join(dir, 'k.pub');
    writeFileSync(f, publicKeyLine.trim() + '\n');
    const out = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', f], { encoding: 'utf8' });
    const fp = /SHA256:[A-Za-z0-9+/]+/.exec(out)?.[0];
    if (!fp) throw new Error(`cannot parse ssh-keygen -l output: ${out}`);
    return fp;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function bashrcOf(user: string): string {
  try {
    const home = execFileSync('getent', ['passwd', user], { encoding: 'utf8' }).split(':')[5];
    return home ? path.join(home, '.bashrc') : '';
  } catch {
    throw new Error(`user ${user} does not exist on this machine`);
  }
}

function quoteSetEnv(k: string, v: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`invalid env name ${k}`);
  if (/["\n\r]/.test(v)) throw new Error(`env value for ${k} may not contain quotes or newlines`);
  return `"${k}=${v}"`;
}

/** Wait until the port answers with an SSH banner. */
async function waitForBanner(
  port: number,
  child: ChildProcess,
  log: () => string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}: ${log().slice(-1500)}`);
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect(port, '127.0.0.1');
      let buf = '';
      const done = (v: boolean) => {
        sock.destroy();
        resolve(v);
      };
      sock.setTimeout(1000, () => done(false));
      sock.on('data', (d) => {
        buf += d.toString('latin1');
        if (buf.startsWith('SSH-')) done(true);
      });
      sock.on('error', () => done(false));
      sock.on('close', () => done(false));
    });
    if (ok) return;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`sshd did not answer on 127.0.0.1:${port}: ${log().slice(-1500)}`);
    }
    await new Promise((r) => setTimeout(r, 30));
  }
}

export async function startSshd(opts: SshdOptions): Promise<SshdHandle> {
  if (!existsSync(SSHD_BIN))
    throw new Error(
      `OpenSSH server not installed (${SSHD_BIN} missing): apt-get install openssh-server (see .ci/run)`,
    );
  if (process.getuid?.() !== 0)
    throw new Error('startSshd needs root (unshare -m and sshd privilege separation)');
  const ownDir = !opts.dir;
  const dir = opts.dir ?? mkdtempSync(path.join(os.tmpdir(), 'sshd-'));
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  const user = opts.user ?? 'root';
  const hostKey = path.join(dir, 'ssh_host_ed25519_key');
  if (!existsSync(hostKey))
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'sshd-test-host', '-f', hostKey], {
      stdio: 'ignore',
    });
  const hostPublicKey = readFileSync(hostKey + '.pub', 'utf8').trim();
  const hostKeyFingerprint = fingerprintOf(hostPublicKey);
  const authorized = path.join(dir, 'authorized_keys');
  writeFileSync(authorized, opts.authorizedKeys.map((k) => k.trim()).join('\n') + '\n');
  chmodSync(authorized, 0o644);
  const port = opts.port ?? (await freePort());
  const lines = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${hostKey}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${authorized}`,
    'StrictModes no',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin prohibit-password',
    'UsePAM no',
    `AllowUsers ${user}`,
    'AcceptEnv LANG LC_* ODOO_* OPS_* PIPELINE_*',
    'PrintMotd no',
    'PrintLastLog no',
    'MaxStartups 100:30:200',
    'MaxSessions 50',
    'ClientAliveInterval 0',
    'LogLevel VERBOSE',
    'Subsystem sftp internal-sftp',
  ];
  const env = opts.env ?? {};
  if (Object.keys(env).length)
    lines.push(
      `SetEnv ${Object.entries(env)
        .map(([k, v]) => quoteSetEnv(k, v))
        .join(' ')}`,
    );
  if (opts.forceCommand) {
    if (/\n/.test(opts.forceCommand)) throw new Error('forceCommand may not contain newlines');
    lines.push(`ForceCommand ${opts.forceCommand}`);
  }
  const config = path.join(dir, 'sshd_config');
  writeFileSync(config, lines.join('\n') + '\n');

  const hostRun = path.join(dir, 'host-run');
  mkdirSync(hostRun, { recursive: true });
  // inside the private mount namespace: keep the real /run reachable at host-run, put a tmpfs on
  // /run, link every real entry back, create /run/sshd, then become sshd (foreground, log to stderr)
  const script = [
    'set -e',
    'mount --make-rprivate /',
    `mount --rbind /run "$HOSTRUN"`,
    'mount -t tmpfs -o mode=0755 tmpfs /run',
    'for e in "$HOSTRUN"/* "$HOSTRUN"/.[!.]*; do [ -e "$e" ] || [ -L "$e" ] || continue; ln -s "$e" "/run/${e##*/}"; done',
    'mkdir -m 0755 /run/sshd',
    'if [ -n "$HIDE_RC" ] && [ -f "$HIDE_RC" ]; then mount --bind /dev/null "$HIDE_RC"; fi',
    '"$SSHD" -t -f "$CONFIG"',
    `exec "$SSHD" -D -e -f "$CONFIG"`,
  ].join('\n');
  const child = spawn('unshare', ['-m', '--propagation', 'private', '/bin/sh', '-c', script], {
    env: {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      HOSTRUN: hostRun,
      SSHD: SSHD_BIN,
      CONFIG: config,
      HIDE_RC: opts.hideBashrc === false ? '' : bashrcOf(user),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const append = (d: Buffer) => {
    output += d.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const log = () => output;
  await waitForBanner(port, child, log, 10000);

  return {
    host: '127.0.0.1',
    port,
    hostKeyFingerprint,
    hostPublicKey,
    dir,
    log,
    stop: () =>
      new Promise<void>((resolve) => {
        const cleanup = () => {
          if (ownDir) rmSync(dir, { recursive: true, force: true });
          resolve();
        };
        if (child.exitCode !== null || child.signalCode !== null) return cleanup();
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(t);
          cleanup();
        });
        child.kill('SIGTERM');
      }),
  };
}
