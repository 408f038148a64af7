/**
 * The sandbox VMs: everything real except Odoo itself.
 *
 *  - a real Docker engine: Debian's `dockerd` 20.10 started by hand with every path (data-root,
 *    exec-root, pidfile, socket) under the cache folder, `"bridge": "none"`, `"iptables": false`
 *    (or an engine named by ODOO_MTA_SANDBOX_DOCKER_HOST, which is then left running);
 *  - a real registry: Debian `docker-registry` (distribution 2.8) on 127.0.0.1:<free port>, storage
 *    under the cache folder;
 *  - a real PostgreSQL 15 per VM: the compose `db` service, run from a stand-in of the official
 *    `postgres:15` image made of Debian's postgresql-15 (docker/sandbox/postgres). Chosen over
 *    startPostgres() on the host because the VMs run the production topology (web + db in compose),
 *    so odoo-ops is exercised on the very code path it takes on a real VM (`docker exec db pg_dump`);
 *  - the REAL docker/Dockerfile, docker-compose.yml + docker-compose.prod.yml, entrypoint.sh and
 *    docker/ops/odoo-ops; application images built from the real Dockerfile on a stand-in `odoo:17.0`
 *    base (docker/sandbox/odoo: a small Python program that serves /web/health and applies an
 *    update with real SQL; variants fail the update, come up unhealthy, or migrate slowly);
 *  - two "VMs", uat and prod: each a real OpenSSH sshd on loopback (test/support/sshd.ts) whose
 *    sessions run odoo-ops against that VM's own compose project and data folder.
 *
 * The stand-in rootfs (debootstrap minbase bookworm + python3, psycopg2, postgresql-15, curl; ≈3 min)
 * is built once and cached as a tar under ODOO_MTA_SANDBOX_CACHE (default ~/.cache/odoo-mta-sandbox),
 * keyed by a hash of docker/sandbox/build-rootfs.sh (the only input of the rootfs). The images on top
 * of it are rebuilt (through Docker's layer cache) only when a hash of docker/Dockerfile, entrypoint.sh,
 * requirements.txt, addons/ and sandbox/ changes; images and registry storage persist in the cache
 * folder, so a second start only tags, checks the registry and brings the VMs up. Sandboxes of parallel jest workers take turns
 * (a file lock), because they share one engine.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { freePort } from '../../local/azurite';
import { generateKeyPair, KeyPair, SshdHandle, startSshd } from './sshd';

/** the repository root, from sources (test/support) or compiled for the demo (dist/test/support) */
export const REPO_ROOT = ((): string => {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    if (existsSync(path.join(dir, 'docker', 'ops', 'odoo-ops'))) return dir;
    dir = path.dirname(dir);
  }
  return path.resolve(__dirname, '..', '..');
})();
export const DOCKER_DIR = path.join(REPO_ROOT, 'docker');
export const OPS_SCRIPT = path.join(DOCKER_DIR, 'ops', 'odoo-ops');
export const SANDBOX_CACHE =
  process.env.ODOO_MTA_SANDBOX_CACHE || path.join(os.homedir(), '.cache', 'odoo-mta-sandbox');
const ODOO_SERIES = '17.0';

export type VmName = 'uat' | 'prod';

/** The releases the sandbox builds from the real Dockerfile and pushes as `uat-v<version>` (and `prod-v<version>`). */
export const SANDBOX_RELEASES = {
  /** what both VMs run after setup */
  initial: { version: '1.0.0' },
  /** a good next release */
  next: { version: '1.1.0' },
  /** its `odoo -u` fails after the first module (CRITICAL + exit 1, DB left half-migrated) */
  brokenMigration: { version: '1.2.0', knob: 'STANDIN_FAIL_MIGRATION', value: '1' },
  /** migrates fine, then /web/health answers 503 */
  unhealthy: { version: '1.3.0', knob: 'STANDIN_UNHEALTHY', value: '1' },
  /** migrates fine but takes a few seconds per module (to hold the lock) */
  slowMigration: { version: '1.4.0', knob: 'STANDIN_MIGRATION_SECONDS', value: '3' },
} as const;
export type ReleaseName = keyof typeof SANDBOX_RELEASES;

export interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export interface SandboxVm {
  name: VmName;
  /** the VM's compose folder (docker-compose.yml, .env, secrets/, state/, backups/) = ODOO_OPS_DIR */
  dir: string;
  project: string;
  sshHost: '127.0.0.1';
  sshPort: number;
  sshUser: string;
  hostKeyFingerprint: string;
  hostPublicKey: string;
  /** http://127.0.0.1:<port>/web/health as seen from the VM (= from this machine) */
  healthUrl: string;
  /** http://127.0.0.1:<port>: the VM's Odoo as the pipeline reaches it (UAT_URL / PROD_URL) */
  baseUrl: string;
  /** run a shell command over real SSH (OpenSSH client); stdin from `input` */
  ssh(command: string, opts?: { input?: Buffer | string | Readable; timeoutMs?: number }): Promise<RunResult>;
  /** `ssh vm 'odoo-ops <args>'` */
  ops(args: string, opts?: { input?: Buffer | string | Readable; timeoutMs?: number }): Promise<RunResult>;
  /** `ssh vm 'odoo-ops --json <args>'` and the JSON line (from stdout, or stderr for streaming verbs) */
  opsJson(
    args: string,
    opts?: { input?: Buffer | string | Readable; timeoutMs?: number },
  ): Promise<RunResult & { json: Record<string, unknown> }>;
  /** the ssh command line an operator would type (for messages and docs) */
  sshCommand(remote: string): string[];
}

export interface Sandbox {
  dockerHost: string;
  /** `127.0.0.1:<port>` */
  registry: string;
  /** full image reference of a release for an environment, e.g. image('next', 'uat') */
  image(release: ReleaseName, env?: VmName): string;
  vms: Partial<Record<VmName, SandboxVm>>;
  vm(name: VmName): SandboxVm;
  /** the SSH key pair the VMs accept (generated for this run) */
  key: KeyPair;
  /** run the docker CLI against the sandbox engine */
  docker(args: string[], opts?: { input?: Buffer | string; timeoutMs?: number }): Promise<RunResult>;
  stop(): Promise<void>;
}

export interface SandboxOptions {
  vms?: VmName[];
  log?: (msg: string) => void;
}

// ------------------------------------------------------------------------------------ helpers --

function run(
  cmd: string,
  args: string[],
  opts: {
    env?: NodeJS.ProcessEnv;
    input?: Buffer | string | Readable;
    timeoutMs?: number;
    cwd?: string;
  } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.length > 400_000) err = err.slice(-200_000);
    });
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({
        code: code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1),
        stdout: Buffer.concat(out),
        stderr: err,
      });
    });
    child.stdin.on('error', () => undefined); // the command may exit before reading everything
    const input = opts.input;
    if (input instanceof Readable) input.pipe(child.stdin);
    else child.stdin.end(input ?? undefined);
  });
}

async function must(p: Promise<RunResult>, what: string): Promise<RunResult> {
  const r = await p;
  if (r.code !== 0)
    throw new Error(
      `${what} failed (exit ${r.code}): ${r.stderr.slice(-3000) || r.stdout.toString().slice(-1000)}`,
    );
  return r;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function which(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin')
    .split(':')
    .concat(['/usr/sbin', '/sbin'])) {
    const p = path.join(dir, bin);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/**
 * The tools the sandbox runs (besides docker-compose, checked apart: the compose plugin also does); each
 * comes from a package of scripts/install-debian-packages.sh's `sandbox` group.
 */
export const SANDBOX_TOOLS = ['dockerd', 'docker', 'docker-registry', 'sshd', 'flock', 'zstd', 'curl', 'jq'];

/** What is missing on this machine to run the sandbox ([] when it can run). */
export function sandboxMissing(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (dockerd, sshd and debootstrap need it)');
  for (const bin of SANDBOX_TOOLS) if (!which(bin)) missing.push(bin);
  if (!which('docker-compose')) missing.push('docker-compose (or the docker compose plugin)');
  return missing;
}

/**
 * `describe` when the sandbox can run here — and ALWAYS in CI (CI=true), so that a sandbox that
 * cannot start fails the run instead of being skipped; `describe.skip` elsewhere, with the reason.
 */
export function describeSandbox(name: string, fn: () => void): void {
  const missing = sandboxMissing();
  if (missing.length === 0 || process.env.CI === 'true' || process.env.CI === '1') {
    describe(name, fn);
  } else {
    describe.skip(`${name} (sandbox unavailable here: missing ${missing.join(', ')})`, fn);
  }
}

// -------------------------------------------------------------------------- cross-process lock --

/** Hold an exclusive flock on `file` until the returned release() (or until this process dies). */
async function lockFile(file: string, log: (m: string) => void): Promise<() => void> {
  const child = spawn('flock', ['-x', file, 'sh', '-c', 'echo locked; exec cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let waited = false;
  const t = setTimeout(() => {
    waited = true;
    log('waiting for another sandbox user (parallel jest worker) to finish');
  }, 2000);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('locked')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`flock on ${file} exited with ${code}`)));
  });
  clearTimeout(t);
  if (waited) log('got the sandbox lock');
  return () => {
    child.stdin!.end();
  };
}

// -------------------------------------------------------------------------------------- dockerd --

interface Engine {
  host: string;
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

async function engineAnswers(env: NodeJS.ProcessEnv): Promise<boolean> {
  const r = await run('docker', ['version', '--format', '{{.Server.Version}}'], {
    env,
    timeoutMs: 15000,
  }).catch(() => undefined);
  return !!r && r.code === 0;
}

async function startEngine(log: (m: string) => void): Promise<Engine> {
  const external = process.env.ODOO_MTA_SANDBOX_DOCKER_HOST;
  const baseEnv = { ...process.env, DOCKER_BUILDKIT: '0', DOCKER_CLI_HINTS: 'false' };
  if (external) {
    const env = { ...baseEnv, DOCKER_HOST: external };
    if (!(await engineAnswers(env)))
      throw new Error(`ODOO_MTA_SANDBOX_DOCKER_HOST=${external} does not answer (docker version failed)`);
    log(`using the Docker engine at ${external}`);
    return { host: external, env, stop: async () => undefined };
  }
  const root = path.join(SANDBOX_CACHE, 'docker');
  mkdirSync(root, { recursive: true });
  const sock = path.join(root, 'docker.sock');
  const host = `unix://${sock}`;
  const env = { ...baseEnv, DOCKER_HOST: host };
  const pidfile = path.join(root, 'docker.pid');
  if (existsSync(sock) && (await engineAnswers(env))) {
    // left by an earlier run of this sandbox that died (we hold the sandbox lock: nobody else uses it)
    log('reusing the sandbox dockerd left running by an earlier run');
    return { host, env, stop: () => stopPid(Number(readFileSync(pidfile, 'utf8').trim()), 'dockerd', 30000) };
  }
  const config = {
    'data-root': path.join(root, 'data'),
    'exec-root': path.join(root, 'exec'),
    pidfile,
    hosts: [host],
    bridge: 'none',
    iptables: false,
    'ip-masq': false,
    'ip-forward': false,
    'log-level': 'warn',
  };
  const configFile = path.join(root, 'daemon.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  rmSync(pidfile, { force: true });
  rmSync(sock, { force: true });
  const logFile = path.join(root, 'dockerd.log');
  const fd = openSync(logFile, 'a');
  // After a run that was killed (its dockerd and containerd ended without a clean stop), the next
  // containerd spends its start cleaning up the dead tasks' shims and dockerd may give up on it
  // ("failed to start containerd: timeout") and exit 1; each start gets further with the cleanup,
  // so an early exit is retried (3 starts at most) before the sandbox is declared broken.
  let child: ChildProcess | undefined;
  for (let attempt = 1; ; attempt++) {
    log(`starting dockerd (data under ${root})${attempt > 1 ? `, attempt ${attempt}` : ''}`);
    rmSync(pidfile, { force: true });
    rmSync(sock, { force: true });
    const c: ChildProcess = spawn(which('dockerd') ?? 'dockerd', ['--config-file', configFile], {
      stdio: ['ignore', fd, fd],
      env: process.env,
    });
    child = c;
    const deadline = Date.now() + 60000;
    let exited = false;
    while (!(await engineAnswers(env))) {
      if (c.exitCode !== null) {
        if (attempt < 3) {
          exited = true;
          break;
        }
        throw new Error(`dockerd exited with ${c.exitCode}: ${readFileSync(logFile, 'utf8').slice(-3000)}`);
      }
      if (Date.now() > deadline) {
        c.kill('SIGKILL');
        if (attempt < 3) {
          exited = true;
          await sleep(2000);
          break;
        }
        throw new Error(
          `dockerd did not answer on ${sock} within 60 s: ${readFileSync(logFile, 'utf8').slice(-3000)}`,
        );
      }
      await sleep(250);
    }
    if (!exited) break;
    await sleep(5000);
  }
  const started = child;
  return {
    host,
    env,
    stop: () =>
      new Promise<void>((resolve) => {
        if (started.exitCode !== null || started.signalCode !== null) return resolve();
        const t = setTimeout(() => started.kill('SIGKILL'), 30000);
        started.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        started.kill('SIGTERM');
      }),
  };
}

async function stopPid(pid: number, what: string, timeoutMs: number): Promise<void> {
  if (!pid) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    if (Date.now() > deadline) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      throw new Error(`${what} (pid ${pid}) did not stop`);
    }
    await sleep(200);
  }
}

// ------------------------------------------------------------------------------------ registry --

async function startRegistry(log: (m: string) => void): Promise<{ addr: string; stop(): Promise<void> }> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sbx-registry-'));
  const storage = path.join(SANDBOX_CACHE, 'registry');
  mkdirSync(storage, { recursive: true });
  const cfg = path.join(dir, 'config.yml');
  writeFileSync(
    cfg,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${storage}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const out: string[] = [];
  const child = spawn(which('docker-registry') ?? 'docker-registry', ['serve', cfg], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d: Buffer) => out.push(d.toString()));
  child.stderr.on('data', (d: Buffer) => out.push(d.toString()));
  const deadline = Date.now() + 20000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`docker-registry exited with ${child.exitCode}: ${out.join('').slice(-2000)}`);
    const ok = await fetch(`http://127.0.0.1:${port}/v2/`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not answer on 127.0.0.1:${port}: ${out.join('').slice(-2000)}`);
    }
    await sleep(100);
  }
  log(`registry on 127.0.0.1:${port}`);
  return {
    addr: `127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        const done = () => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        };
        if (child.exitCode !== null || child.signalCode !== null) return done();
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(t);
          done();
        });
        child.kill('SIGTERM');
      }),
  };
}

// -------------------------------------------------------------------------------------- images --

function fileHash(...files: string[]): string {
  const h = createHash('sha256');
  for (const f of files) h.update(readFileSync(f));
  return h.digest('hex').slice(0, 16);
}

async function ensureImages(engine: Engine, registry: string, log: (m: string) => void): Promise<void> {
  const docker = (args: string[], what: string, timeoutMs = 600000) =>
    must(run('docker', args, { env: engine.env, timeoutMs }), what);
  const buildScript = path.join(DOCKER_DIR, 'sandbox', 'build-rootfs.sh');
  const key = fileHash(buildScript);
  const rootfsImage = `odoo-standin-rootfs:${key}`;
  const have = await run('docker', ['image', 'inspect', rootfsImage], { env: engine.env });
  if (have.code !== 0) {
    const tar = path.join(SANDBOX_CACHE, `rootfs-${key}.tar`);
    if (!existsSync(tar)) {
      for (const old of readdirSync(SANDBOX_CACHE).filter((f) => /^rootfs-.*\.tar$/.test(f)))
        rmSync(path.join(SANDBOX_CACHE, old), { force: true });
      if (!which('debootstrap'))
        throw new Error(
          'debootstrap is needed once to build the stand-in rootfs: apt-get install debootstrap',
        );
      log(
        'building the stand-in rootfs with debootstrap (bookworm minbase; about 3 minutes, cached afterwards)',
      );
      const t0 = Date.now();
      await must(run(buildScript, [tar], { timeoutMs: 20 * 60000 }), 'debootstrap of the stand-in rootfs');
      log(
        `rootfs built in ${Math.round((Date.now() - t0) / 1000)} s (${Math.round(statSync(tar).size / 1e6)} MB)`,
      );
    }
    log(`importing ${rootfsImage}`);
    await must(
      run('docker', ['import', tar, rootfsImage], { env: engine.env, timeoutMs: 600000 }),
      'docker import of the rootfs',
    );
  }
  const t0 = Date.now();
  const sandboxDir = path.join(DOCKER_DIR, 'sandbox');
  // stable local names; the registry tags (whose host:port changes per run) are made from them
  const local = (rel: { version: string }, env: VmName) => `odoo-mta-sandbox/odoo-mta:${env}-v${rel.version}`;
  const inputs = inputsHash(key);
  const marker = path.join(SANDBOX_CACHE, 'images.hash');
  const allLocal = Object.values(SANDBOX_RELEASES).flatMap((rel) => [local(rel, 'uat'), local(rel, 'prod')]);
  const upToDate =
    existsSync(marker) &&
    readFileSync(marker, 'utf8').trim() === inputs &&
    (
      await run(
        'docker',
        ['image', 'inspect', '--format', '{{.Id}}', 'odoo:' + ODOO_SERIES, 'postgres:15', ...allLocal],
        { env: engine.env },
      )
    ).code === 0;
  if (!upToDate) {
    rmSync(marker, { force: true });
    const rootArg = ['--build-arg', `STANDIN_ROOTFS=${rootfsImage}`];
    // stand-ins of the official images, under the official names inside this engine only
    await docker(
      [
        'build',
        '-q',
        ...rootArg,
        '--build-arg',
        `ODOO_VERSION=${ODOO_SERIES}`,
        '-t',
        `odoo:${ODOO_SERIES}`,
        path.join(sandboxDir, 'odoo'),
      ],
      'build of the stand-in odoo image',
    );
    await docker(
      ['build', '-q', ...rootArg, '-t', 'postgres:15', path.join(sandboxDir, 'postgres')],
      'build of the stand-in postgres image',
    );
    for (const [name, rel] of Object.entries(SANDBOX_RELEASES)) {
      let base = 'odoo';
      if ('knob' in rel) {
        base = `odoo-standin-${name.toLowerCase()}`;
        await docker(
          [
            'build',
            '-q',
            '-f',
            path.join(sandboxDir, 'odoo', 'Dockerfile.variant'),
            '--build-arg',
            `BASE=odoo:${ODOO_SERIES}`,
            '--build-arg',
            `KNOB=${rel.knob}`,
            '--build-arg',
            `VALUE=${rel.value}`,
            '-t',
            `${base}:${ODOO_SERIES}`,
            path.join(sandboxDir, 'odoo'),
          ],
          `build of the ${name} stand-in variant`,
        );
      }
      // the REAL application Dockerfile; fixed sha/date so that rebuilds hit the layer cache
      await docker(
        [
          'build',
          '-q',
          '-f',
          path.join(DOCKER_DIR, 'Dockerfile'),
          '--build-arg',
          `ODOO_BASE_IMAGE=${base}`,
          '--build-arg',
          `ODOO_VERSION=${ODOO_SERIES}`,
          '--build-arg',
          `APP_VERSION=${rel.version}`,
          '--build-arg',
          `GIT_SHA=${createHash('sha1').update(rel.version).digest('hex')}`,
          '--build-arg',
          'BUILD_DATE=2026-01-01T00:00:00Z',
          '-t',
          local(rel, 'uat'),
          '-t',
          local(rel, 'prod'),
          DOCKER_DIR,
        ],
        `build of release ${rel.version} from docker/Dockerfile`,
      );
    }
    await run('docker', ['image', 'prune', '-f'], { env: engine.env }); // dangling layers of earlier builds
  }
  let pushed = 0;
  for (const rel of Object.values(SANDBOX_RELEASES)) {
    for (const env of ['uat', 'prod'] as VmName[]) {
      const tag = `${registry}/odoo-mta:${env}-v${rel.version}`;
      await docker(['tag', local(rel, env), tag], `docker tag ${tag}`);
      // the registry's storage persists in the cache: push only what it lacks (or everything after a rebuild)
      const head = await fetch(`http://${registry}/v2/odoo-mta/manifests/${env}-v${rel.version}`, {
        method: 'HEAD',
        headers: {
          Accept:
            'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json',
        },
      }).then(
        (r) => r.status,
        () => 0,
      );
      if (!upToDate || head !== 200) {
        await docker(['push', '-q', tag], `push of ${tag}`);
        pushed++;
      }
    }
  }
  if (!upToDate) writeFileSync(marker, inputs + '\n');
  log(
    `images ${upToDate ? 'up to date' : 'built from docker/Dockerfile'}, ${pushed} pushed to ${registry} (${Math.round((Date.now() - t0) / 1000)} s)`,
  );
}

/** Hash of everything the sandbox images are built from. */
function inputsHash(rootfsKey: string): string {
  const h = createHash('sha256')
    .update(rootfsKey)
    .update(JSON.stringify(SANDBOX_RELEASES))
    .update(ODOO_SERIES);
  const walk = (p: string): void => {
    const st = statSync(p);
    if (st.isDirectory()) {
      for (const e of readdirSync(p).sort()) walk(path.join(p, e));
    } else {
      h.update(path.relative(DOCKER_DIR, p)).update(readFileSync(p));
    }
  };
  for (const f of ['Dockerfile', '.dockerignore', 'entrypoint.sh', 'requirements.txt', 'addons', 'sandbox'])
    walk(path.join(DOCKER_DIR, f));
  return h.digest('hex').slice(0, 24);
}

// ------------------------------------------------------------------------------------------ VMs --

async function removeProject(engine: Engine, project: string): Promise<void> {
  const ids = await run('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`], {
    env: engine.env,
  });
  const list = ids.stdout.toString().split('\n').filter(Boolean);
  if (list.length) await run('docker', ['rm', '-f', '-v', ...list], { env: engine.env, timeoutMs: 120000 });
  const vols = await run(
    'docker',
    ['volume', 'ls', '-q', '--filter', `label=com.docker.compose.project=${project}`],
    { env: engine.env },
  );
  const vlist = vols.stdout.toString().split('\n').filter(Boolean);
  if (vlist.length) await run('docker', ['volume', 'rm', '-f', ...vlist], { env: engine.env });
  const nets = await run(
    'docker',
    ['network', 'ls', '-q', '--filter', `label=com.docker.compose.project=${project}`],
    { env: engine.env },
  );
  const nlist = nets.stdout.toString().split('\n').filter(Boolean);
  if (nlist.length) await run('docker', ['network', 'rm', ...nlist], { env: engine.env });
}

async function startVm(
  name: VmName,
  engine: Engine,
  image: string,
  key: KeyPair,
  log: (m: string) => void,
): Promise<{ vm: SandboxVm; stop(): Promise<void> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `sbx-vm-${name}-`));
  chmodSync(dir, 0o755);
  const project = `sbx-${name}`;
  await removeProject(engine, project); // leftovers of a run that died
  for (const f of ['docker-compose.yml', 'docker-compose.prod.yml'])
    copyFileSync(path.join(DOCKER_DIR, f), path.join(dir, f));
  mkdirSync(path.join(dir, 'secrets'));
  // generated for this run only; 0644 because the containers read them as their own users
  writeFileSync(path.join(dir, 'secrets', 'db_password'), randomBytes(18).toString('base64url') + '\n', {
    mode: 0o644,
  });
  writeFileSync(
    path.join(dir, 'secrets', 'odoo_admin_password'),
    randomBytes(18).toString('base64url') + '\n',
    { mode: 0o644 },
  );
  const httpPort = await freePort();
  const lpPort = await freePort();
  const envFile = [
    'COMPOSE_FILE=docker-compose.yml:docker-compose.prod.yml',
    `COMPOSE_PROJECT_NAME=${project}`,
    `ODOO_IMAGE=${image}`,
    'POSTGRES_IMAGE=postgres:15',
    'ODOO_DB_NAME=odoo',
    'ODOO_BIND=127.0.0.1',
    `ODOO_HTTP_PORT=${httpPort}`,
    `ODOO_LONGPOLLING_PORT=${lpPort}`,
    'ODOO_WORKERS=2',
    'POSTGRES_USER=odoo',
    'ODOO_MEM_LIMIT=2g',
    'ODOO_CPUS=2',
    'DB_MEM_LIMIT=2g',
    'DB_CPUS=2',
    `ODOO_OPS_STATE_DIR=${dir}/state`,
    `ODOO_OPS_BACKUP_DIR=${dir}/backups`,
    'ODOO_OPS_ROLLBACK_HEALTH_WAIT=60',
    '',
  ].join('\n');
  writeFileSync(path.join(dir, '.env'), envFile);
  // what the VM's login sessions see: its compose folder, the sandbox engine, odoo-ops on the PATH
  const sessionEnv = {
    ODOO_OPS_DIR: dir,
    DOCKER_HOST: engine.host,
    DOCKER_CLI_HINTS: 'false',
    PATH: `${path.dirname(OPS_SCRIPT)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
  };
  const localEnv = { ...engine.env, ...sessionEnv };
  try {
    await firstInstall(name, dir, image, localEnv, log);
  } catch (e) {
    await removeProject(engine, project).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return connectVm(name, dir, project, httpPort, engine, sessionEnv, key);
}

async function firstInstall(
  name: VmName,
  dir: string,
  image: string,
  localEnv: NodeJS.ProcessEnv,
  log: (m: string) => void,
): Promise<void> {
  log(`${name}: first install (db up, odoo -i base with ${image}, odoo-ops start)`);
  await must(
    run('docker-compose', ['up', '-d', 'db'], { env: localEnv, cwd: dir, timeoutMs: 120000 }),
    `${name}: docker-compose up -d db`,
  );
  const deadline = Date.now() + 60000;
  for (;;) {
    const r = await run('docker-compose', ['exec', '-T', 'db', 'pg_isready', '-q', '-U', 'odoo'], {
      env: localEnv,
      cwd: dir,
    });
    if (r.code === 0) break;
    if (Date.now() > deadline)
      throw new Error(`${name}: PostgreSQL in the db service did not become ready: ${r.stderr}`);
    await sleep(500);
  }
  await must(
    run(
      'docker-compose',
      ['run', '--rm', '-T', 'web', 'odoo', '-d', 'odoo', '-i', 'base', '--stop-after-init'],
      { env: { ...localEnv, ODOO_IMAGE: image }, cwd: dir, timeoutMs: 180000 },
    ),
    `${name}: first install (odoo -i base)`,
  );
  await must(
    run(OPS_SCRIPT, ['start', image], { env: localEnv, timeoutMs: 180000 }),
    `${name}: odoo-ops start`,
  );
  await must(
    run(OPS_SCRIPT, ['health', '--wait', '60'], { env: localEnv, timeoutMs: 120000 }),
    `${name}: odoo-ops health`,
  );
}

async function connectVm(
  name: VmName,
  dir: string,
  project: string,
  httpPort: number,
  engine: Engine,
  sessionEnv: Record<string, string>,
  key: KeyPair,
): Promise<{ vm: SandboxVm; stop(): Promise<void> }> {
  const sshd: SshdHandle = await startSshd({
    dir: path.join(dir, '.sshd'),
    authorizedKeys: [key.publicKey],
    env: sessionEnv,
  });
  const clientDir = mkdtempSync(path.join(os.tmpdir(), `sbx-ssh-${name}-`));
  const keyFile = path.join(clientDir, 'id');
  writeFileSync(keyFile, key.privateKey, { mode: 0o600 });
  const knownHosts = path.join(clientDir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}\n`);
  const sshCommand = (remote: string) => [
    'ssh',
    '-i',
    keyFile,
    '-p',
    String(sshd.port),
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    `UserKnownHostsFile=${knownHosts}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'LogLevel=ERROR',
    '-o',
    'ConnectTimeout=10',
    'root@127.0.0.1',
    remote,
  ];
  const ssh: SandboxVm['ssh'] = (command, opts = {}) => {
    const [bin, ...args] = sshCommand(command);
    return run(bin, args, { input: opts.input, timeoutMs: opts.timeoutMs ?? 300000 });
  };
  const ops: SandboxVm['ops'] = (args, opts) => ssh(`odoo-ops ${args}`, opts);
  const opsJson: SandboxVm['opsJson'] = async (args, opts) => {
    const r = await ops(`--json ${args}`, opts);
    const streaming = /^(backup-db|backup-filestore)\b/.test(args.trim()) && !/--save\b/.test(args);
    const text = streaming ? r.stderr : r.stdout.toString();
    const line = text
      .split('\n')
      .filter((l) => l.startsWith('{"verb"'))
      .pop();
    if (!line)
      throw new Error(
        `odoo-ops --json ${args}: no JSON result line (exit ${r.code}); stdout: ${r.stdout.toString().slice(-500)} stderr: ${r.stderr.slice(-1500)}`,
      );
    return { ...r, json: JSON.parse(line) as Record<string, unknown> };
  };
  const vm: SandboxVm = {
    name,
    dir,
    project,
    sshHost: '127.0.0.1',
    sshPort: sshd.port,
    sshUser: 'root',
    hostKeyFingerprint: sshd.hostKeyFingerprint,
    hostPublicKey: sshd.hostPublicKey,
    healthUrl: `http://127.0.0.1:${httpPort}/web/health`,
    baseUrl: `http://127.0.0.1:${httpPort}`,
    ssh,
    ops,
    opsJson,
    sshCommand,
  };
  return {
    vm,
    stop: async () => {
      await sshd.stop();
      await removeProject(engine, project);
      rmSync(clientDir, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ----------------------------------------------------------------------------------------- main --

/**
 * The pipeline settings (names of shared/config.ts) that point the app at this sandbox: registry,
 * both VMs' SSH endpoints with pinned host keys, the SSH key, the VMs' URLs. For `npm run demo`,
 * `npm start` defaults and e2e tests of the flows.
 */
/** md5 of every public table's rows of a VM's database, in a stable order — what "identical data" means in the e2e tests. */
export async function tableChecksums(vm: SandboxVm): Promise<Record<string, string>> {
  const list = await vm.ops(
    `psql -X -At -c "SELECT table_name FROM information_schema.tables WHERE table_schema='public' AND table_type='BASE TABLE' ORDER BY 1"`,
  );
  if (list.code !== 0) throw new Error(`listing tables on ${vm.name} failed: ${list.stderr}`);
  const tables = list.stdout.toString().split('\n').filter(Boolean);
  if (tables.length <= 3)
    throw new Error(`expected an Odoo-shaped database on ${vm.name}, found ${tables.length} tables`);
  const query = tables
    .map(
      (t) => `SELECT '${t}', coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), 'empty') FROM "${t}" x`,
    )
    .join(' UNION ALL ');
  const r = await vm.ops(`psql -X -At -F ' ' -c "${query}"`);
  if (r.code !== 0) throw new Error(`checksums on ${vm.name} failed: ${r.stderr}`);
  return Object.fromEntries(
    r.stdout
      .toString()
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ') as [string, string]),
  );
}

export function sandboxSettings(sb: Sandbox): Record<string, string> {
  const out: Record<string, string> = {
    REGISTRY_KIND: 'oci',
    REGISTRY_URL: `http://${sb.registry}`,
    REGISTRY_REPOSITORY: 'odoo-mta',
    SSH_PRIVATE_KEY: sb.key.privateKey,
  };
  for (const [name, vm] of Object.entries(sb.vms) as Array<[VmName, SandboxVm]>) {
    const p = name.toUpperCase();
    out[`${p}_SSH_HOST`] = vm.sshHost;
    out[`${p}_SSH_PORT`] = String(vm.sshPort);
    out[`${p}_SSH_USER`] = vm.sshUser;
    out[`${p}_SSH_HOST_KEY`] = vm.hostKeyFingerprint;
    out[`${p}_URL`] = vm.baseUrl;
  }
  return out;
}

export async function startSandbox(opts: SandboxOptions = {}): Promise<Sandbox> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`[sandbox] ${m}\n`));
  const missing = sandboxMissing();
  if (missing.length)
    throw new Error(
      `the sandbox cannot start here: missing ${missing.join(', ')} (see .ci/run and docs/OPERATIONS_GUIDE.md)`,
    );
  mkdirSync(SANDBOX_CACHE, { recursive: true });
  const t0 = Date.now();
  const release = await lockFile(path.join(SANDBOX_CACHE, 'sandbox.lock'), log);
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch((e: unknown) => log(`cleanup: ${String(e)}`));
    stops.length = 0;
    release();
  };
  try {
    const engine = await startEngine(log);
    stops.push(() => engine.stop());
    const registry = await startRegistry(log);
    stops.push(() => registry.stop());
    await ensureImages(engine, registry.addr, log);
    const image = (rel: ReleaseName, env: VmName = 'uat') =>
      `${registry.addr}/odoo-mta:${env}-v${SANDBOX_RELEASES[rel].version}`;
    const key = generateKeyPair('sandbox@odoo-mta');
    const vms: Partial<Record<VmName, SandboxVm>> = {};
    // the VMs come up side by side (each waits mostly on its own containers)
    const names = opts.vms ?? (['uat', 'prod'] as VmName[]);
    const started = await Promise.allSettled(
      names.map((name) => startVm(name, engine, image('initial', name), key, log)),
    );
    started.forEach((r, i) => {
      if (r.status === 'fulfilled') {
        stops.push(() => r.value.stop());
        vms[names[i]] = r.value.vm;
      }
    });
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    log(
      `sandbox ready in ${Math.round((Date.now() - t0) / 1000)} s (${Object.keys(vms).join(', ') || 'no VMs'})`,
    );
    return {
      dockerHost: engine.host,
      registry: registry.addr,
      image,
      vms,
      vm(name) {
        const v = vms[name];
        if (!v) throw new Error(`sandbox VM ${name} was not started`);
        return v;
      },
      key,
      docker: (args, o = {}) =>
        run('docker', args, { env: engine.env, input: o.input, timeoutMs: o.timeoutMs ?? 300000 }),
      stop: stopAll,
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
