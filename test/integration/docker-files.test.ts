/**
 * docker/: the compose files as docker-compose itself reads them, Dockerfile rules (hadolint is not
 * packaged for Debian: the rules that matter here are checked below), shellcheck on every script, and
 * odoo-ops behaviour that needs no engine (usage, config parsing, the lock).
 * The image itself is built from docker/Dockerfile by the sandbox and checked in the last block.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import {
  describeSandbox,
  DOCKER_DIR,
  OPS_SCRIPT,
  REPO_ROOT,
  Sandbox,
  startSandbox,
} from '../support/sandbox';

jest.setTimeout(5 * 60 * 1000);

const inCi = process.env.CI === 'true' || process.env.CI === '1';
const have = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;

interface ComposeService {
  image?: string;
  healthcheck?: { test: string[] | string };
  volumes?: Array<string | { source?: string; target?: string }>;
  mem_limit?: string | number;
  cpus?: string | number;
  secrets?: unknown[];
  environment?: Record<string, string | null>;
  restart?: string;
  command?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
}
interface ComposeConfig {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

function composeConfig(
  files: string[],
  env: Record<string, string> = {},
): { code: number; out: string; err: string; cfg?: ComposeConfig } {
  const args = files
    .flatMap((f) => ['-f', path.join(DOCKER_DIR, f)])
    .concat(['--project-directory', DOCKER_DIR, 'config']);
  const r = spawnSync('docker-compose', args, {
    encoding: 'utf8',
    cwd: DOCKER_DIR,
    // an empty .env beside the files must not leak in: give every value explicitly
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ODOO_IMAGE: 'registry.example/odoo-mta:uat-v1.0.0',
      POSTGRES_PASSWORD: 'x',
      ...env,
    },
  });
  return {
    code: r.status ?? 1,
    out: r.stdout,
    err: r.stderr,
    cfg: r.status === 0 ? (parse(r.stdout) as ComposeConfig) : undefined,
  };
}

function memBytes(v: string | number | undefined): number {
  if (typeof v === 'number') return v;
  const m = /^(\d+(?:\.\d+)?)([kmg]?)b?$/i.exec(String(v));
  if (!m) return NaN;
  return (
    Number(m[1]) *
    ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as Record<string, number>)[m[2].toLowerCase()]
  );
}

(have('docker-compose') || inCi ? describe : describe.skip)('compose files (docker-compose config)', () => {
  test('docker-compose.yml: web + db with health checks, named volumes, 2 GB / 2 CPU defaults', () => {
    const r = composeConfig(['docker-compose.yml']);
    expect(r.err).not.toMatch(/ERROR/);
    expect(r.code).toBe(0);
    const { services, volumes } = r.cfg!;
    expect(Object.keys(services).sort()).toEqual(['db', 'web']);
    for (const s of Object.values(services)) {
      expect(s.healthcheck).toBeDefined();
      expect(memBytes(s.mem_limit)).toBe(2 * 1024 ** 3);
      expect(Number(s.cpus)).toBe(2);
    }
    expect(JSON.stringify(services.web.healthcheck!.test)).toContain('/web/health');
    expect(JSON.stringify(services.db.healthcheck!.test)).toContain('pg_isready');
    expect(services.web.depends_on).toMatchObject({ db: { condition: 'service_healthy' } });
    expect(Object.keys(volumes ?? {}).sort()).toEqual(['db-data', 'web-data']);
    const targets = (s: ComposeService) =>
      (s.volumes ?? []).map((v) => (typeof v === 'string' ? v.split(':')[1] : v.target));
    expect(targets(services.web)).toContain('/var/lib/odoo');
    expect(targets(services.db)).toContain('/var/lib/postgresql/data');
    expect(services.web.image).toBe('registry.example/odoo-mta:uat-v1.0.0');
  });

  test('resource limits follow the environment', () => {
    const r = composeConfig(['docker-compose.yml'], {
      ODOO_MEM_LIMIT: '3g',
      ODOO_CPUS: '1.5',
      DB_MEM_LIMIT: '512m',
      DB_CPUS: '1',
    });
    expect(r.code).toBe(0);
    expect(memBytes(r.cfg!.services.web.mem_limit)).toBe(3 * 1024 ** 3);
    expect(Number(r.cfg!.services.web.cpus)).toBe(1.5);
    expect(memBytes(r.cfg!.services.db.mem_limit)).toBe(512 * 1024 ** 2);
  });

  test('without ODOO_IMAGE compose refuses, naming the variable', () => {
    const r = spawnSync(
      'docker-compose',
      ['-f', path.join(DOCKER_DIR, 'docker-compose.yml'), '--project-directory', DOCKER_DIR, 'config'],
      {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, HOME: process.env.HOME },
      },
    );
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('ODOO_IMAGE must name the image to run');
  });

  test('prod overlay: restart policies, passwords from secret files, bounded logs', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'compose-prod-'));
    try {
      writeFileSync(path.join(dir, 'pw'), 'x');
      const r = composeConfig(['docker-compose.yml', 'docker-compose.prod.yml'], {
        DB_PASSWORD_SECRET_FILE: path.join(dir, 'pw'),
        ODOO_ADMIN_PASSWORD_SECRET_FILE: path.join(dir, 'pw'),
        POSTGRES_PASSWORD: 'must-not-be-used',
      });
      expect(r.code).toBe(0);
      const { web, db } = r.cfg!.services;
      expect(web.restart).toBe('unless-stopped');
      expect(db.restart).toBe('unless-stopped');
      expect(web.environment).toMatchObject({
        DB_PASSWORD_FILE: '/run/secrets/db_password',
        DB_PASSWORD: '',
      });
      expect(db.environment).toMatchObject({
        POSTGRES_PASSWORD_FILE: '/run/secrets/db_password',
        POSTGRES_PASSWORD: '',
      });
      expect(r.out).not.toContain('must-not-be-used');
      expect(web.secrets?.length).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('dev overlay: mounted addons, dev mode, single worker', () => {
    const r = composeConfig(['docker-compose.yml', 'docker-compose.dev.yml']);
    expect(r.code).toBe(0);
    const web = r.cfg!.services.web;
    expect(web.command?.join(' ')).toContain('--dev=');
    expect(web.command).toContain('--workers=0');
    expect(JSON.stringify(web.volumes)).toContain('/mnt/extra-addons');
  });

  test('.env.example documents every variable the compose files and odoo-ops read', () => {
    const example = readFileSync(path.join(DOCKER_DIR, '.env.example'), 'utf8');
    const documented = new Set([...example.matchAll(/^([A-Z_][A-Z0-9_]*)=/gm)].map((m) => m[1]));
    const used = new Set<string>();
    for (const f of ['docker-compose.yml', 'docker-compose.prod.yml', 'docker-compose.dev.yml']) {
      for (const m of readFileSync(path.join(DOCKER_DIR, f), 'utf8').matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g))
        used.add(m[1]);
    }
    for (const m of readFileSync(OPS_SCRIPT, 'utf8').matchAll(
      /\$\{(ODOO_OPS_[A-Z_]+|ODOO_[A-Z_]+|POSTGRES_[A-Z_]+|COMPOSE_[A-Z_]+)[:}-]/g,
    ))
      used.add(m[1]);
    // these two locate the file itself: read from the environment only (the file says so in a comment)
    for (const self of ['ODOO_OPS_DIR', 'ODOO_OPS_ENV_FILE']) {
      used.delete(self);
      expect(example).toContain(self);
    }
    const undocumented = [...used].filter((v) => !documented.has(v)).sort();
    expect(undocumented).toEqual([]);
  });
});

describe('Dockerfile rules (hadolint-like)', () => {
  const text = readFileSync(path.join(DOCKER_DIR, 'Dockerfile'), 'utf8');
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const instr = (name: string) => lines.filter((l) => l.toUpperCase().startsWith(name + ' '));

  test('FROM the official odoo image, major version a build arg defaulting to 17.0, never :latest', () => {
    expect(text).toMatch(/^ARG ODOO_VERSION=17\.0$/m);
    expect(text).toMatch(/^ARG ODOO_BASE_IMAGE=odoo$/m);
    expect(instr('FROM')).toEqual(['FROM ${ODOO_BASE_IMAGE}:${ODOO_VERSION}']);
    expect(text).not.toMatch(/:latest\b/);
  });

  test('labels (version, git sha, build date), /APP_VERSION, non-root, HEALTHCHECK on /web/health', () => {
    const labels = instr('LABEL').join(' ');
    for (const l of [
      'org.opencontainers.image.version="${APP_VERSION}"',
      'org.opencontainers.image.revision="${GIT_SHA}"',
      'org.opencontainers.image.created="${BUILD_DATE}"',
    ]) {
      expect(labels).toContain(l);
    }
    expect(text).toContain('> /APP_VERSION');
    const users = instr('USER');
    expect(users[users.length - 1]).toBe('USER odoo'); // DL3002: last USER should not be root
    expect(instr('HEALTHCHECK').join(' ')).toMatch(/CMD curl -fsS .*\/web\/health/);
    expect(instr('ENTRYPOINT')).toHaveLength(1);
  });

  test('hadolint rules: no ADD for local files, pip without cache, pipefail shell, no sudo, no apt upgrade', () => {
    expect(instr('ADD')).toEqual([]); // DL3020
    for (const run of instr('RUN')) {
      if (/pip3? install/.test(run)) expect(run).toContain('--no-cache-dir'); // DL3042
      expect(run).not.toMatch(/\bsudo\b/); // DL3004
      expect(run).not.toMatch(/apt(-get)? (dist-)?upgrade/); // DL3005
      expect(run).not.toMatch(/\bcd\s/); // DL3003: WORKDIR instead
    }
    expect(text).toContain('SHELL ["/bin/bash", "-o", "pipefail", "-c"]'); // DL4006
    expect(existsSync(path.join(DOCKER_DIR, '.dockerignore'))).toBe(true);
  });
});

(have('shellcheck') || inCi ? describe : describe.skip)('shell scripts (shellcheck)', () => {
  test.each([
    'ops/odoo-ops',
    'entrypoint.sh',
    'sandbox/build-rootfs.sh',
    'sandbox/postgres/docker-entrypoint.sh',
    'sandbox/odoo/entrypoint.sh',
  ])('%s has no shellcheck warnings', (f) => {
    const r = spawnSync('shellcheck', ['-S', 'warning', path.join(DOCKER_DIR, f)], { encoding: 'utf8' });
    expect(r.stdout).toBe('');
    expect(r.status).toBe(0);
  });
});

describe('odoo-ops without an engine: usage, configuration, lock', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const ops = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
    spawnSync(OPS_SCRIPT, args, { encoding: 'utf8', env: { ...env, ...extra }, input: '' });

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ops-cfg-'));
    writeFileSync(path.join(dir, '.env'), `COMPOSE_PROJECT_NAME=cfgtest\nODOO_OPS_STATE_DIR=${dir}/state\n`);
    // a docker that is not there: verbs that reach the engine fail, but usage/lock must not need it
    mkdirSync(path.join(dir, 'bin'));
    writeFileSync(path.join(dir, 'bin', 'docker'), '#!/bin/sh\necho "no engine in this test" >&2\nexit 1\n');
    chmodSync(path.join(dir, 'bin', 'docker'), 0o755);
    env = { PATH: `${dir}/bin:/usr/sbin:/usr/bin:/sbin:/bin`, ODOO_OPS_DIR: dir, HOME: dir };
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('help lists every verb and the exit codes; unknown verb/option exit 2 with one JSON line', () => {
    const h = ops(['help']);
    expect(h.status).toBe(0);
    for (const v of ['status', 'backup-db', 'restore-db', 'migrate', 'health', 'rollback', 'current', 'logs'])
      expect(h.stdout).toContain(v);
    expect(h.stdout).toContain('3 lock busy');
    const u = ops(['--json', 'explode']);
    expect(u.status).toBe(2);
    expect(u.stdout.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(u.stdout)).toMatchObject({ ok: false, exit: 2, verb: 'explode' });
    expect(ops(['--bogus', 'status']).status).toBe(2);
    expect(ops([]).status).toBe(2);
  });

  test('a missing VM folder is a configuration error (exit 10)', () => {
    const r = ops(['--json', 'status'], { ODOO_OPS_DIR: path.join(dir, 'nope') });
    expect(r.status).toBe(10);
    expect(JSON.parse(r.stdout).message).toContain('does not exist');
  });

  test('the .env file is read as data, never executed; the environment wins over it', () => {
    const marker = path.join(dir, 'pwned');
    writeFileSync(
      path.join(dir, '.env'),
      `ODOO_OPS_STATE_DIR=${dir}/state\nODOO_DB_NAME=$(touch ${marker})\n`,
    );
    const r = ops(['--json', 'status']);
    expect(existsSync(marker)).toBe(false);
    expect(r.status).toBe(10); // the odd value is refused as a database name
    expect(JSON.parse(r.stdout).message).toContain('not a plain database name');
    const ok = ops(['--json', 'history'], { ODOO_DB_NAME: 'odoo' });
    expect(ok.status).toBe(0);
  });

  test('lock busy: a second mutating run exits 3 naming the holder; read-only verbs are not blocked', async () => {
    mkdirSync(path.join(dir, 'state'), { recursive: true });
    writeFileSync(
      path.join(dir, 'state', 'lock.info'),
      'pid=1 verb=migrate since=2026-01-01T00:00:00Z by=someone\n',
    );
    // hold the lock exactly as a running odoo-ops would (flock on state/lock)
    const holder = spawn(
      'flock',
      ['-x', path.join(dir, 'state', 'lock'), 'sh', '-c', 'echo held; exec cat >/dev/null'],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
    try {
      const r = ops(['--json', 'stop']);
      expect(r.status).toBe(3);
      expect(JSON.parse(r.stdout)).toMatchObject({
        ok: false,
        exit: 3,
        lock_holder: expect.stringContaining('verb=migrate'),
      });
      const w = ops(['--json', '--lock-wait', '1', 'pull', 'x/y:z']);
      expect(w.status).toBe(3);
      expect(ops(['history']).status).toBe(0);
    } finally {
      holder.stdin!.end();
      await new Promise((r) => holder.once('exit', r));
    }
    // free again: the same verb now gets past the lock (and fails later, on the missing engine)
    const after = ops(['--json', 'pull', 'x/y:z']);
    expect(after.status).toBe(8);
  });

  test('streaming verbs refuse a terminal and keep stdout clean of messages', () => {
    const r = ops(['--json', 'backup-db', '--compress', 'brotli']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe(''); // streaming verb: its JSON line goes to stderr
    expect(JSON.parse(r.stderr.trim().split('\n').pop()!)).toMatchObject({ verb: 'backup-db', exit: 2 });
  });

  test('the operations and rollback guides show the verbs the script implements', () => {
    const guide = readFileSync(path.join(REPO_ROOT, 'docs', 'OPERATIONS_GUIDE.md'), 'utf8');
    const rollback = readFileSync(path.join(REPO_ROOT, 'docs', 'ROLLBACK_GUIDE.md'), 'utf8');
    for (const v of [
      'status',
      'backup-db',
      'backup-filestore',
      'restore-db',
      'restore-filestore',
      'pull',
      'stop',
      'migrate',
      'start',
      'health',
      'logs',
      'current',
    ]) {
      expect(guide).toContain(`odoo-ops ${v}`);
    }
    expect(rollback).toContain('odoo-ops rollback');
    expect(rollback).toContain('odoo-ops restore-db');
  });
});

describeSandbox('the image built from docker/Dockerfile (sandbox engine)', () => {
  let sb: Sandbox;
  beforeAll(
    async () => {
      sb = await startSandbox({ vms: [] });
    },
    30 * 60 * 1000,
  );
  afterAll(
    async () => {
      await sb?.stop();
    },
    5 * 60 * 1000,
  );

  test('labels, /APP_VERSION, non-root user and HEALTHCHECK are in the image', async () => {
    const img = sb.image('next');
    const r = await sb.docker(['image', 'inspect', img]);
    expect(r.code).toBe(0);
    const [info] = JSON.parse(r.stdout.toString()) as Array<{
      Config: { User: string; Labels: Record<string, string>; Healthcheck?: { Test: string[] } };
    }>;
    expect(info.Config.User).toBe('odoo');
    expect(info.Config.Labels).toMatchObject({
      'org.opencontainers.image.version': '1.1.0',
      'org.odoo.series': '17.0',
    });
    expect(info.Config.Labels['org.opencontainers.image.revision']).toMatch(/^[0-9a-f]{40}$/);
    expect(info.Config.Healthcheck?.Test.join(' ')).toContain('/web/health');
    const v = await sb.docker([
      'run',
      '--rm',
      '--network',
      'none',
      '--entrypoint',
      'cat',
      img,
      '/APP_VERSION',
    ]);
    expect(v.stdout.toString().trim()).toBe('1.1.0');
  });

  test('entrypoint: settings from env and secret files into the generated config, base options kept', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ep-'));
    try {
      writeFileSync(path.join(dir, 'pw'), 'from-secret-file\n', { mode: 0o644 });
      const r = await sb.docker([
        'run',
        '--rm',
        '--network',
        'none',
        '-v',
        `${dir}/pw:/run/secrets/db_password:ro`,
        '-e',
        'DB_HOST=pg.internal',
        '-e',
        'DB_PASSWORD_FILE=/run/secrets/db_password',
        '-e',
        'DB_NAME=mta',
        '-e',
        'ODOO_WORKERS=3',
        sb.image('next'),
        'sh',
        '-c',
        'cat "$ODOO_RC"; id -un',
      ]);
      expect(r.code).toBe(0);
      const out = r.stdout.toString();
      expect(out).toMatch(/^db_host = pg\.internal$/m);
      expect(out).toMatch(/^db_password = from-secret-file$/m);
      expect(out).toMatch(/^dbfilter = \^mta\$$/m);
      expect(out).toMatch(/^workers = 3$/m);
      expect(out).toMatch(/^addons_path = \/mnt\/extra-addons$/m); // from the base /etc/odoo/odoo.conf
      expect(out.match(/^db_host/gm)).toHaveLength(1);
      expect(out.trim().endsWith('odoo')).toBe(true);
      const bad = await sb.docker([
        'run',
        '--rm',
        '--network',
        'none',
        '-e',
        'DB_PORT=abc',
        sb.image('next'),
        'true',
      ]);
      expect(bad.code).toBe(78);
      expect(bad.stderr).toContain('DB_PORT must be a number');
      const noDb = await sb.docker([
        'run',
        '--rm',
        '--network',
        'none',
        '-e',
        'DB_HOST=127.0.0.1',
        '-e',
        'DB_WAIT_TIMEOUT=2',
        sb.image('next'),
      ]);
      expect(noDb.code).toBe(69);
      expect(noDb.stderr).toContain('did not answer within 2s');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
