/**
 * A sandbox "VM" for the real docker/ops/odoo-ops reached over the test's sshd: a folder with the docker
 * stand-in (test/support/ops-docker-standin.ts) first on PATH, its own database on the test's PostgreSQL
 * (ODOO_OPS_PG=host) created with `sql`, and a wrapper script that exports the VM's environment and runs
 * odoo-ops — the command the pipeline runs over SSH.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startAzurite, type AzuriteHandle } from '../../local/azurite';
import { BackupStore } from '../../shared/adapters/backup-store';
import type { SshTarget } from '../../shared/adapters/ssh';
import { DOCKER_STANDIN } from './ops-docker-standin';
import { startPostgres, type PgServer } from './postgres';
import { OPS_SCRIPT } from './sandbox';
import { generateKeyPair, startSshd, type SshdHandle } from './sshd';

/** What the odoo-ops-over-sshd suites that move backups through Blob Storage run against. */
export interface OpsServices {
  /** scratch folder (removed by stop); `<work>/id` is the SSH private key, for a plain `ssh -i` */
  work: string;
  pg: PgServer;
  sshd: SshdHandle;
  az: AzuriteHandle;
  /** root on the sshd with the generated key, host key pinned */
  target: SshTarget;
  /** the pipeline's backup store on Azurite's `backups` container (created) */
  store: BackupStore;
  stop(): Promise<void>;
}

/** A real PostgreSQL 15, a real sshd (root, a fresh key) and Azurite with the `backups` container. */
export async function startOpsServices(prefix: string): Promise<OpsServices> {
  const work = mkdtempSync(path.join(os.tmpdir(), prefix));
  const key = generateKeyPair();
  const [pg, sshd, az] = await Promise.all([
    startPostgres(),
    startSshd({ authorizedKeys: [key.publicKey] }),
    startAzurite({ dir: path.join(work, 'azurite'), timeoutMs: 120_000 }),
  ]);
  const target: SshTarget = {
    host: sshd.host,
    port: sshd.port,
    username: 'root',
    privateKey: key.privateKey,
    hostKeyFingerprint: sshd.hostKeyFingerprint,
  };
  writeFileSync(path.join(work, 'id'), key.privateKey, { mode: 0o600 });
  const store = new BackupStore({ connectionString: az.connectionString, container: 'backups' });
  await store.ensureContainer();
  return {
    work,
    pg,
    sshd,
    az,
    target,
    store,
    async stop() {
      await sshd.stop();
      pg.stop();
      await az.stop();
      rmSync(work, { recursive: true, force: true });
    },
  };
}

export interface OpsVm {
  dir: string;
  db: string;
  /** the command the pipeline runs over SSH (a wrapper that sets the VM's environment) */
  ops: string;
}

export function opsVm(
  o: { pg: PgServer; work: string; name: string; sql: string },
  extra: Record<string, string> = {},
): OpsVm {
  const { pg, name } = o;
  const dir = path.join(o.work, name);
  const db = `odoo_${name.replace(/[^a-z0-9]/g, '_')}`;
  mkdirSync(path.join(dir, 'bin'), { recursive: true });
  writeFileSync(path.join(dir, '.env'), `COMPOSE_PROJECT_NAME=${name}\n`);
  writeFileSync(path.join(dir, 'bin', 'docker'), DOCKER_STANDIN);
  chmodSync(path.join(dir, 'bin', 'docker'), 0o755);
  pg.createDb(db);
  pg.psql(db, o.sql);
  const env: Record<string, string> = {
    PATH: `${dir}/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    ODOO_OPS_DIR: dir,
    ODOO_OPS_PG: 'host',
    ODOO_DB_NAME: db,
    POSTGRES_USER: 'postgres',
    PGHOST: pg.host,
    PGPORT: String(pg.port),
    PGUSER: 'postgres',
    STANDIN_LOG: path.join(dir, 'docker.log'),
    ...extra,
  };
  const wrapper = path.join(dir, 'odoo-ops');
  writeFileSync(
    wrapper,
    `#!/bin/sh\n${Object.entries(env)
      .map(([k, v]) => `export ${k}='${v}'`)
      .join('\n')}\nexec '${OPS_SCRIPT}' "$@"\n`,
  );
  chmodSync(wrapper, 0o755);
  return { dir, db, ops: wrapper };
}
