/**
 * An in-memory stand-in of a VM reached over SSH, answering `odoo-ops --json <verb>` the way
 * docker/ops/odoo-ops does (exit codes, JSON result line, streamed backups, restores from stdin).
 * For the ORCHESTRATION-LOGIC tests only (outcomes, compensation order, retries); the e2e tests use the
 * sandbox VM (real sshd + docker + odoo-ops).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { BlockBlobClient, ContainerClient, RestError } from '@azure/storage-blob';
import { PassThrough, Readable } from 'node:stream';
import type { RemoteShell } from '../../functions/activities/deploy';
import { PipelineError } from '../../shared/domain/errors';
import type { SshRunOptions, SshRunResult } from '../../shared/adapters/ssh';

export interface FakeVmState {
  webRunning: boolean;
  image: string;
  previousImage?: string;
  /** the "database": any string; a migration appends to it */
  db: string;
  filestore: string;
  pending: string;
  lock: string;
  diskFreeKb: number;
  /** `odoo-ops job` jobs by id (survive a restart of the driving process with a state file) */
  jobs?: Record<string, FakeJob>;
}

export interface FakeJob {
  id: string;
  kind: string;
  spec: string;
  state: 'running' | 'succeeded' | 'failed';
  exit_code?: number;
  steps: Record<string, unknown>[];
  message: string;
}

export interface FakeVmBehaviour {
  /** `migrate` exits 5 leaving the DB half-migrated */
  failMigration?: boolean;
  /** `health` exits 4 for this image */
  unhealthyImage?: string;
  /** `backup-db` exits 6 */
  failBackup?: boolean;
  /** `restore-db` exits 7 (the rollback fails) */
  failRestore?: boolean;
  /** the next N connects fail with [SSH.CONNECT] (transient) */
  connectFailures?: number;
  /** `pull` exits 8 */
  failPull?: boolean;
  /** the SSH connection drops during `migrate` (as a job: right after the job started, which goes on) */
  dropDuringMigrate?: boolean;
  /** `migrate` waits for this promise (to hold a deploy mid-way) */
  holdMigrate?: Promise<void>;
}

export interface FakeVm {
  state: FakeVmState;
  behaviour: FakeVmBehaviour;
  /** every verb run, in order (e.g. `stop`, `migrate img all`, `restore-db`; a job's work as `migrate …` too) */
  calls: string[];
  connects: number;
  connect(): Promise<RemoteShell>;
}

async function readAll(s: NodeJS.ReadableStream | Buffer | string | undefined): Promise<string> {
  if (s === undefined) return '';
  if (typeof s === 'string') return s;
  if (Buffer.isBuffer(s)) return s.toString('utf8');
  const chunks: Buffer[] = [];
  for await (const c of s as Readable) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

export function createFakeVm(
  initial: Partial<FakeVmState> = {},
  behaviour: FakeVmBehaviour = {},
  o: { stateFile?: string; latencyMs?: number } = {},
): FakeVm {
  // with a state file the VM survives a restart of the process driving it (crash tests)
  const saved =
    o.stateFile && existsSync(o.stateFile)
      ? (JSON.parse(readFileSync(o.stateFile, 'utf8')) as { state: FakeVmState; calls: string[] })
      : undefined;
  const state: FakeVmState = saved?.state ?? {
    webRunning: true,
    image: 'reg.local/odoo-mta:uat-v1.0.0',
    db: 'DB@1.0.0',
    filestore: 'FS@1.0.0',
    pending: '',
    lock: '',
    diskFreeKb: 50 * 1024 * 1024,
    ...initial,
  };
  const save = () => {
    if (o.stateFile) writeFileSync(o.stateFile, JSON.stringify({ state, calls: vm.calls }));
  };
  const vm: FakeVm = {
    state,
    behaviour,
    calls: saved?.calls ?? [],
    connects: 0,
    async connect() {
      vm.connects++;
      if ((behaviour.connectFailures ?? 0) > 0) {
        behaviour.connectFailures!--;
        throw new PipelineError('SSH.CONNECT', 'connect ECONNREFUSED 127.0.0.1:22 (fake)', true);
      }
      return shell();
    },
  };

  const result = (
    verb: string,
    code: number,
    fields: Record<string, unknown> = {},
    message = code === 0 ? 'ok' : 'failed',
  ): SshRunResult => {
    const line = JSON.stringify({ verb, ok: code === 0, exit: code, message, ...fields });
    return {
      code,
      stdout: line + '\n',
      stderrTail: code === 0 ? '' : message,
      durationMs: 1,
    } as SshRunResult;
  };

  /** what `odoo-ops migrate <img> <mods>` does to the fake VM */
  async function migrateNow(args: string[]): Promise<SshRunResult> {
    const verb = 'migrate';
    if (state.webRunning) return result(verb, 9, {}, 'web is running');
    if (behaviour.holdMigrate) await behaviour.holdMigrate;
    if (behaviour.failMigration) {
      state.db += '+half';
      state.pending = 'sale:to upgrade';
      return result(
        verb,
        5,
        { log: '/opt/odoo/state/logs/migrate-x.log' },
        'migration failed (odoo exit 1, CRITICAL: boom)',
      );
    }
    state.db += `+migrated(${args[1]},${args[2]})`;
    return result(verb, 0, { log: '/opt/odoo/state/logs/migrate-x.log' });
  }

  const jobLine = (j: FakeJob, fields: Record<string, unknown> = {}): SshRunResult =>
    result(
      'job',
      0,
      { id: j.id, kind: j.kind, state: j.state, exit_code: j.exit_code ?? null, steps: j.steps, ...fields },
      j.message,
    );

  /**
   * The work of `job start backup --blob <id> [--part N=S:SHA]...` as odoo-ops does it: the database and
   * the filestore uploaded with the SAS URL of stdin line 1 (never overwriting), then manifest.json with
   * the metadata of line 2 and the parts' sizes and sha256. Returns the steps and the exit code.
   */
  async function blobBackup(
    rest: string[],
    stdin: string,
  ): Promise<{ code: number; steps: Record<string, unknown>[] }> {
    const [sas, metaLine] = stdin.split('\n');
    const id = rest[1];
    const steps: Record<string, unknown>[] = [];
    const container = new ContainerClient(sas);
    const parts: Record<string, { size: number; sha256: string }> = {};
    const refused = (err: unknown, part: string) => {
      const status = (err as RestError).statusCode ?? 0;
      const code =
        status === 401 || status === 403
          ? 'BLOB.FORBIDDEN'
          : status === 409 || status === 412
            ? 'BACKUP.EXISTS'
            : 'BLOB.UNAVAILABLE';
      steps.push({
        verb: 'upload',
        ok: false,
        exit: 6,
        part,
        code,
        message: `Put Block of ${id}/${part}: ${status}`,
      });
      return { code: 6, steps };
    };
    for (const [verb, part] of [
      ['backup-db', 'db.dump'],
      ['backup-filestore', 'filestore.tar'],
    ] as const) {
      vm.calls.push(verb);
      if (verb === 'backup-db' && behaviour.failBackup) {
        steps.push({ verb, ok: false, exit: 6, message: 'pg_dump failed (fake)' });
        return { code: 6, steps };
      }
      const data = Buffer.from(verb === 'backup-db' ? state.db : state.filestore);
      steps.push({ verb, ok: true, exit: 0, message: 'dumped to stdout' });
      try {
        await container
          .getBlockBlobClient(`${id}/${part}`)
          .upload(data, data.length, { conditions: { ifNoneMatch: '*' } });
      } catch (err) {
        return refused(err, part);
      }
      parts[part] = { size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
      steps.push({ verb: 'upload', ok: true, exit: 0, part, ...parts[part] });
    }
    for (let i = 2; i + 1 < rest.length; i += 2) {
      const m = /^([^=]+)=(\d+):([0-9a-f]{64})$/.exec(rest[i + 1]);
      if (m) parts[m[1]] = { size: Number(m[2]), sha256: m[3] };
    }
    const manifest = {
      ...(JSON.parse(metaLine || '{}') as Record<string, unknown>),
      format: 1,
      id,
      environment: id.split('/')[0],
      startedAt: new Date().toISOString(),
      finishedAt: new Date().toISOString(),
      parts,
    };
    const body = JSON.stringify(manifest);
    try {
      await container
        .getBlockBlobClient(`${id}/manifest.json`)
        .upload(body, Buffer.byteLength(body), { conditions: { ifNoneMatch: '*' } });
    } catch (err) {
      return refused(err, 'manifest.json');
    }
    const bytes = Object.values(parts).reduce((a, x) => a + x.size, 0);
    steps.push({ verb: 'manifest', ok: true, exit: 0, message: 'complete', backup_id: id, bytes, parts });
    return { code: 0, steps };
  }

  /**
   * The work of `job start restore --blob <id> [--into NAME] [--no-filestore]` as odoo-ops does it: the
   * manifest and the parts read with the read SAS URLs of stdin line 1 (one per blob), each part's size
   * and sha256 checked against the manifest before anything is swapped; then the database (and the
   * filestore) replaced — recorded as `restore-db`, `restore-filestore` — or, with --into, left aside.
   */
  async function blobRestore(
    rest: string[],
    stdin: string,
  ): Promise<{ code: number; steps: Record<string, unknown>[] }> {
    const id = rest[1];
    const into = rest.includes('--into') ? rest[rest.indexOf('--into') + 1] : undefined;
    const urls = new Map(
      (stdin.split('\n')[0] ?? '')
        .split(' ')
        .filter(Boolean)
        .map((u) => [new URL(u).pathname.split('/').pop() as string, u]),
    );
    const steps: Record<string, unknown>[] = [];
    const fail = (code: number, errCode: string, message: string) => {
      steps.push({ verb: 'restore', ok: false, exit: code, code: errCode, message });
      return { code, steps };
    };
    const read = async (name: string): Promise<Buffer | { status: number }> => {
      const u = urls.get(name);
      if (!u) return { status: 403 };
      try {
        return await new BlockBlobClient(u).downloadToBuffer();
      } catch (err) {
        return { status: (err as RestError).statusCode ?? 0 };
      }
    };
    const m = await read('manifest.json');
    if (!Buffer.isBuffer(m))
      return m.status === 404
        ? fail(7, 'BACKUP.NOT_FOUND', `backup ${id} has no manifest (missing or incomplete)`)
        : fail(7, 'BLOB.FORBIDDEN', `${id}/manifest.json: Blob Storage refused it (${m.status})`);
    const manifest = JSON.parse(m.toString('utf8')) as {
      parts: Record<string, { size: number; sha256: string }>;
    };
    const names = ['db.dump', 'filestore.tar'].filter(
      (n) => manifest.parts[n] && !(n === 'filestore.tar' && rest.includes('--no-filestore')),
    );
    const data: Record<string, string> = {};
    for (const n of names) {
      const b = await read(n);
      if (!Buffer.isBuffer(b)) return fail(7, 'BACKUP.NOT_FOUND', `${id}/${n} is missing (${b.status})`);
      const sha = createHash('sha256').update(b).digest('hex');
      if (b.length !== manifest.parts[n].size || sha !== manifest.parts[n].sha256)
        return fail(7, 'BACKUP.CORRUPT', `${id}/${n} differs from its manifest: nothing swapped`);
      data[n] = b.toString('utf8');
    }
    vm.calls.push(into ? `restore-db --into ${into}` : 'restore-db');
    if (behaviour.failRestore) {
      steps.push({ verb: 'restore-db', ok: false, exit: 7, message: 'pg_restore failed: nothing swapped' });
      return { code: 7, steps };
    }
    if (!into && state.webRunning) {
      steps.push({ verb: 'swap-db', ok: false, exit: 9, message: 'web is running' });
      return { code: 9, steps };
    }
    steps.push({ verb: 'restore-db', ok: true, exit: 0, message: 'restored' });
    if (data['filestore.tar'] !== undefined) {
      vm.calls.push(into ? `restore-filestore --into ${into}` : 'restore-filestore');
      steps.push({ verb: 'restore-filestore', ok: true, exit: 0, message: 'restored' });
    }
    if (!into) {
      state.db = data['db.dump'];
      if (data['filestore.tar'] !== undefined) state.filestore = data['filestore.tar'];
      state.pending = '';
    }
    steps.push({
      verb: 'restore',
      ok: true,
      exit: 0,
      message: 'restored',
      backup_id: id,
      parts: manifest.parts,
    });
    return { code: 0, steps };
  }

  /** `odoo-ops job start|status …` as docker/ops/odoo-ops answers it (one job per id, never run twice) */
  async function jobVerb(a: string[], drop: () => void, stdin?: string): Promise<SshRunResult> {
    state.jobs ??= {};
    if (a[0] === 'status') {
      const j = state.jobs[a[1]];
      return j ? jobLine(j) : result('job', 11, {}, `no job ${a[1]} on this VM`);
    }
    if (a[0] !== 'start' || a[2] !== '--id')
      return result('job', 2, {}, 'usage: odoo-ops job start|status|log');
    const [kind, , id, ...rest] = a.slice(1);
    const spec = [kind, ...rest].join(' ');
    const had = state.jobs[id];
    if (had) {
      if (had.spec !== spec)
        return result('job', 2, {}, `job ${id} exists for other work (${had.spec}): not started`);
      return jobLine(had, { started: false });
    }
    const j: FakeJob = { id, kind, spec, state: 'running', steps: [], message: `job ${id} is running` };
    state.jobs[id] = j;
    vm.calls.push(spec);
    if ((kind === 'backup' || kind === 'restore') && rest[0] === '--blob') {
      vm.calls.pop(); // its work is recorded as backup-db, backup-filestore / restore-db, restore-filestore
      const b = await (kind === 'backup' ? blobBackup : blobRestore)(rest, stdin ?? '');
      j.steps.push(...b.steps);
      j.exit_code = b.code;
      j.state = b.code === 0 ? 'succeeded' : 'failed';
      j.message =
        b.code === 0
          ? `job ${id} succeeded`
          : `job ${id} failed (exit ${b.code}): ${String(b.steps[b.steps.length - 1]?.message)}`;
      save();
      return jobLine(j, { started: true });
    }
    const work = (async () => {
      const r = kind === 'migrate' ? await migrateNow([kind, ...rest]) : result(kind, 2, {}, `kind ${kind}`);
      const line = JSON.parse(r.stdout ?? '{}') as Record<string, unknown>;
      j.steps.push(line);
      j.exit_code = r.code;
      j.state = r.code === 0 ? 'succeeded' : 'failed';
      j.message =
        r.code === 0 ? `job ${id} succeeded` : `job ${id} failed (exit ${r.code}): ${String(line.message)}`;
      save();
    })();
    // a job nothing holds ends before `job start` answers (as a quick one on a VM); a held one runs on
    if (!behaviour.holdMigrate) await work;
    if (kind === 'migrate' && behaviour.dropDuringMigrate) {
      // the connection drops while the job runs: the job goes on, the caller sees a transient error
      drop();
      throw new PipelineError('SSH.DISCONNECTED', 'connection to 127.0.0.1 closed (fake)', true);
    }
    return jobLine(j, { started: true });
  }

  function shell(): RemoteShell {
    let closed = false;
    return {
      async close() {
        closed = true;
      },
      stream(command: string, o: Omit<SshRunOptions, 'stdout'> = {}) {
        void o;
        const verb = command.replace(/^odoo-ops --json /, '').split(' ')[0];
        vm.calls.push(verb);
        const out = new PassThrough();
        const fail = (verb === 'backup-db' && behaviour.failBackup) || closed;
        const data = verb === 'backup-db' ? state.db : state.filestore;
        const done = new Promise<SshRunResult>((resolve, reject) => {
          setImmediate(() => {
            if (fail) {
              const err = new PipelineError('SSH.COMMAND_FAILED', `${verb} exited 6: pg_dump failed (fake)`);
              out.destroy(err);
              reject(err);
              return;
            }
            out.end(Buffer.from(data));
            resolve({ code: 0, stderrTail: '', durationMs: 1 } as SshRunResult);
          });
        });
        done.catch(() => undefined);
        return { stdout: out, done };
      },
      async run(command: string, ro: SshRunOptions = {}) {
        if (o.latencyMs) await new Promise((r) => setTimeout(r, o.latencyMs));
        const r = await runVerb(command, ro);
        save();
        return r;
      },
    };
    async function runVerb(command: string, o: SshRunOptions): Promise<SshRunResult> {
      if (closed) throw new PipelineError('SSH.DISCONNECTED', 'closed', true);
      if (command.startsWith('df '))
        return {
          code: 0,
          stdout: `/dev/sda1 100000000 1000 ${state.diskFreeKb} 1% /opt/odoo\n`,
          stderrTail: '',
          durationMs: 1,
        } as SshRunResult;
      const args = command
        .replace(/^odoo-ops --json (--lock-wait \d+ )?/, '')
        .split(' ')
        .map((a) => a.replace(/^'(.*)'$/, '$1'));
      const verb = args[0];
      // a job call is not work: the job's own work is recorded when it starts (`migrate <img> <mods>`)
      if (verb !== 'job') vm.calls.push(args.join(' '));
      switch (verb) {
        case 'status':
          return result(verb, 0, {
            image: state.image,
            previous: state.previousImage ?? '',
            web_state: state.webRunning ? 'running' : 'exited',
            db_reachable: true,
            pending_modules: state.pending,
            lock: state.lock,
          });
        case 'current':
          return result(verb, 0, { image: state.image, previous: state.previousImage ?? '' });
        case 'pull':
          if (behaviour.failPull)
            return result(verb, 8, {}, `docker pull ${args[1]} failed: manifest unknown`);
          return result(verb, 0, {
            image: args[1],
            digest: `${args[1].split(':')[0]}@sha256:${'a'.repeat(64)}`,
          });
        case 'stop': {
          const changed = state.webRunning;
          state.webRunning = false;
          return result(verb, 0, { changed });
        }
        case 'migrate': {
          if (behaviour.dropDuringMigrate) {
            state.db += '+half';
            state.pending = 'sale:to upgrade';
            closed = true;
            throw new PipelineError('SSH.DISCONNECTED', 'connection to 127.0.0.1 closed (fake)', true);
          }
          return migrateNow(args);
        }
        case 'job':
          return jobVerb(args.slice(1), () => (closed = true), await readAll(o.stdin));
        case 'start': {
          if (state.pending)
            return result(verb, 9, {}, `database is half-migrated (pending: ${state.pending})`);
          if (state.webRunning && state.image === args[1]) return result(verb, 0, { changed: false });
          if (state.image !== args[1]) state.previousImage = state.image;
          state.image = args[1];
          state.webRunning = true;
          return result(verb, 0, { changed: true, image: args[1] });
        }
        case 'health':
          if (!state.webRunning) return result(verb, 4, { failures: 'web not running' }, 'unhealthy');
          if (behaviour.unhealthyImage === state.image)
            return result(verb, 4, { failures: '/web/health: 503' }, 'unhealthy after 1s: /web/health: 503');
          return result(verb, 0);
        case 'restore-db': {
          const data = await readAll(o.stdin);
          if (behaviour.failRestore) return result(verb, 7, {}, 'pg_restore failed: nothing swapped');
          if (state.webRunning) return result(verb, 9, {}, 'web is running');
          state.db = data;
          state.pending = '';
          return result(verb, 0);
        }
        case 'restore-filestore':
          state.filestore = await readAll(o.stdin);
          return result(verb, 0);
        case 'logs':
          return result(verb, 0, {
            text: args.includes('--migration') ? 'CRITICAL boom in sale' : 'web log lines',
          });
        case 'history':
          return result(verb, 0, { text: '{"verb":"migrate"}' });
        default:
          return result(verb, 2, {}, `unknown verb ${verb}`);
      }
    }
  }
  return vm;
}
