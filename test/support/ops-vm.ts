/**
 * A sandbox "VM" for the real docker/ops/odoo-ops reached over the test's sshd: a folder with the docker
 * stand-in (test/support/ops-docker-standin.ts) first on PATH, its own database on the test's PostgreSQL
 * (ODOO_OPS_PG=host) created with `sql`, and a wrapper script that exports the VM's environment and runs
 * odoo-ops — the command the pipeline runs over SSH.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DOCKER_STANDIN } from './ops-docker-standin';
import type { PgServer } from './postgres';
import { OPS_SCRIPT } from './sandbox';

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
