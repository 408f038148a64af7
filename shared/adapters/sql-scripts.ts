/**
 * The one way to run the refresh SQL (sql/neutralize.sql, sql/anonymize.sql, sql/anonymize.d/*.sql):
 * the pipeline (on the VM through SSH) and an operator (by hand) run the same psql command, built here.
 *
 * The UAT password hash is a secret: it is never put on the command line (visible in `ps` on the VM)
 * but fed on psql's standard input as `\set uat_password_hash '...'` (`-f -` first). psql errors are
 * returned without their DETAIL lines, which can quote row values (e.g. a unique violation's key).
 */
import { spawn } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { PipelineError } from '../domain/errors';

/** The sql/ folder of this checkout (works from the TypeScript sources and from dist/). */
export const SQL_DIR = ((): string => {
  const candidates = [
    path.resolve(__dirname, '..', '..', 'sql'),
    path.resolve(__dirname, '..', '..', '..', 'sql'),
    path.resolve(process.cwd(), 'sql'),
  ];
  return candidates.find((d) => existsSync(path.join(d, 'neutralize.sql'))) ?? candidates[0];
})();

export interface RefreshSqlParams {
  /** database to neutralize and anonymize */
  database: string;
  /** UAT's public URL (web.base.url); default: the scripts' own default */
  uatUrl?: string;
  /** Odoo pbkdf2-sha512 hash the kept logins get (neutralize.sql); default: they keep their own */
  passwordHash?: string;
  /** logins that can still log in and are kept as they are ('admin' always is) */
  keepLogins?: readonly string[];
  /** delete attachments of personal records instead of only renaming them */
  dropAttachments?: boolean;
  /** folder holding the scripts where psql runs (default SQL_DIR; on a VM, the copied folder) */
  sqlDir?: string;
  /** file names of anonymize.d/ extensions to run after anonymize.sql (default: none) */
  extensions?: readonly string[];
  /** run only neutralize.sql (no anonymization) */
  neutralizeOnly?: boolean;
}

export interface PsqlCommand {
  /** psql arguments (without the psql binary) */
  args: string[];
  /** what to write on psql's stdin (the secret variables); empty when none */
  stdin: string;
}

// what Odoo 16-18 verifies (passlib pbkdf2_sha512, adapted base64); sql/neutralize.sql checks it again
const PASSWORD_HASH = /^\$pbkdf2-sha512\$\d{1,7}\$[A-Za-z0-9./]+\$[A-Za-z0-9./]+$/;
const LOGIN = /^[^,'"\\\s]+$/;

function bad(message: string): never {
  throw new PipelineError('SQL.BAD_PARAMETER', message);
}

/** The extension scripts of a local anonymize.d folder, in the order they run (name order). */
export function extensionScripts(sqlDir = SQL_DIR): string[] {
  const dir = path.join(sqlDir, 'anonymize.d');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort();
}

/**
 * psql reads its `\set` lines (stdin) and `-v` values line by line: a newline or carriage return ends the
 * value and starts a meta-command (`\! …` runs a shell command on the VM); NUL cuts it; other C0
 * characters and DEL have no business in a database name, URL, login or hash. Refused, naming the
 * parameter and the character (never the value, which may be secret).
 */
function refuseControlCharacters(name: string, value: string): void {
  for (const ch of value) {
    const c = ch.charCodeAt(0);
    if (c < 0x20 || c === 0x7f)
      throw new PipelineError(
        'SQL.CONTROL_CHARACTER',
        `${name} contains a control character (U+${c.toString(16).toUpperCase().padStart(4, '0')}); psql variables take printable text only`,
      );
  }
}

/**
 * Build the psql command; bad input is refused before anything runs: SQL.CONTROL_CHARACTER for a
 * control character in any value, SQL.BAD_PARAMETER otherwise.
 */
export function buildRefreshCommand(p: RefreshSqlParams): PsqlCommand {
  if (p.database) refuseControlCharacters('database', p.database);
  if (p.uatUrl !== undefined) refuseControlCharacters('uatUrl', p.uatUrl);
  if (p.passwordHash !== undefined) refuseControlCharacters('passwordHash', p.passwordHash);
  for (const login of p.keepLogins ?? []) refuseControlCharacters('keepLogins', login);
  for (const ext of p.extensions ?? []) refuseControlCharacters('extensions', ext);
  if (!p.database || /[\s'"]/.test(p.database)) bad('database name is missing or contains spaces or quotes');
  if (p.uatUrl !== undefined) {
    let u: URL | undefined;
    try {
      u = new URL(p.uatUrl);
    } catch {
      u = undefined;
    }
    if (!u || !['http:', 'https:'].includes(u.protocol)) bad('uatUrl must be an absolute http(s) URL');
  }
  if (p.passwordHash !== undefined && !PASSWORD_HASH.test(p.passwordHash)) {
    bad('passwordHash must be an Odoo password hash ($pbkdf2-sha512$rounds$salt$hash)');
  }
  for (const login of p.keepLogins ?? [])
    if (!LOGIN.test(login)) bad('keepLogins entries may not contain commas, quotes or spaces');
  const dir = p.sqlDir ?? SQL_DIR;
  const join = (...parts: string[]): string => path.posix.join(dir.split(path.sep).join('/'), ...parts);
  const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', p.database];
  if (p.uatUrl !== undefined) args.push('-v', `uat_url=${p.uatUrl}`);
  if (p.keepLogins?.length)
    args.push('-v', `keep_logins=${[...new Set(['admin', ...p.keepLogins])].join(',')}`);
  if (p.dropAttachments !== undefined)
    args.push('-v', `drop_attachments=${p.dropAttachments ? 'on' : 'off'}`);
  let stdin = '';
  // neutralize.sql sets the kept logins' password: it gets the hash even when it runs alone
  if (p.passwordHash !== undefined) {
    stdin = `\\set uat_password_hash '${p.passwordHash}'\n`;
    args.push('-f', '-');
  }
  args.push('-f', join('neutralize.sql'));
  if (!p.neutralizeOnly) {
    args.push('-f', join('anonymize.sql'));
    for (const ext of p.extensions ?? []) {
      if (ext.includes('/') || !ext.endsWith('.sql'))
        bad(`extension ${JSON.stringify(ext)} must be a file name ending in .sql`);
      args.push('-f', join('anonymize.d', ext));
    }
  }
  return { args, stdin };
}

/** Single-quote each argument for a POSIX shell (the command run on the VM through SSH). */
export function shellCommand(psql: string, args: readonly string[]): string {
  return [psql, ...args]
    .map((a) => (/^[A-Za-z0-9_./:=@%+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}

/** psql's error output without DETAIL/CONTEXT lines (they can quote row values). */
export function redactPsqlErrors(stderr: string): string {
  return stderr
    .split('\n')
    .filter(
      (l) =>
        !/^\s*(psql:[^ ]*:\d+: )?(DETAIL|CONTEXT|QUERY|LINE \d+|\s*\^)/.test(l) && !/^\s+\^?\s*$/.test(l),
    )
    .join('\n')
    .trim();
}

export interface RunResult {
  stdout: string;
  durationMs: number;
}

/** Run the command with a local psql (tests, benchmark, and a pipeline host that reaches the DB). */
export async function runRefreshSql(
  p: RefreshSqlParams,
  opts: { psql?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  const cmd = buildRefreshCommand(p);
  const psql = opts.psql ?? path.join(process.env.PG_BIN || '/usr/lib/postgresql/15/bin', 'psql');
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(psql, cmd.args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) =>
      reject(new PipelineError('SQL.PSQL_MISSING', `cannot run ${psql}: ${err.message}`)),
    );
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout, durationMs: Date.now() - started });
      else
        reject(
          new PipelineError(
            'SQL.SCRIPT_FAILED',
            `psql exited with ${code}: ${redactPsqlErrors(stderr) || '(no message)'}`,
          ),
        );
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(cmd.stdin);
  });
}
