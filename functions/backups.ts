/**
 * Backups of an environment (function key):
 *   GET  /api/backups/{env}?limit=N                 newest first (1-200, default 20): id, version, time, size,
 *                                                    parts, state (verified | corrupt | complete | incomplete)
 *   POST /api/backups/{env}/{name}/verify           re-read every part of `<env>/<name>` and compare size and
 *                                                    sha256 with its manifest; the result is recorded (the
 *                                                    status page shows it) — 200 ok, 422 corrupt, 404 unknown
 * `{name}` is the backup id without the environment: `20261127T185600Z-1.2.0`.
 */
import { app, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { loadConfig } from '../shared/config';
import { ledgerContainer } from '../shared/adapters/ledger';
import { parseBackupId } from '../shared/adapters/backup-store';
import { createVerificationStore } from '../shared/adapters/backup-verifications';
import { errorCode, messageOf } from '../shared/domain/errors';
import { backupView } from '../shared/domain/status-view';
import { backupStoreFromConfig, ENVIRONMENTS, listBackups } from './status';

const json = (status: number, body: unknown): HttpResponseInit => ({
  status,
  jsonBody: body,
  headers: { 'cache-control': 'no-store' },
});
const bad = (status: number, error: string, message: string) => json(status, { error, message });
const envOk = (env: string) => (ENVIRONMENTS as readonly string[]).includes(env);

export async function listEnvironmentBackups(
  req: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  const env = req.params.env ?? '';
  if (!envOk(env))
    return bad(400, 'BACKUPS.BAD_ENVIRONMENT', `environment must be one of ${ENVIRONMENTS.join(', ')}`);
  const raw = req.query.get('limit');
  const limit = raw === null || raw === '' ? 20 : Number(raw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 200)
    return bad(400, 'BACKUPS.BAD_LIMIT', 'limit must be an integer from 1 to 200');
  try {
    const items = (await listBackups(loadConfig(process.env), env, limit)).map(backupView);
    return json(200, { environment: env, count: items.length, items });
  } catch (err) {
    context.error(`listing backups of ${env} failed: ${messageOf(err)}`);
    return bad(503, errorCode(err) ?? 'BACKUPS.UNAVAILABLE', 'the backup storage is unavailable');
  }
}

export async function verifyBackup(req: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const env = req.params.env ?? '';
  if (!envOk(env))
    return bad(400, 'BACKUPS.BAD_ENVIRONMENT', `environment must be one of ${ENVIRONMENTS.join(', ')}`);
  const id = `${env}/${req.params.name ?? ''}`;
  try {
    parseBackupId(id);
  } catch {
    return bad(
      400,
      'BACKUPS.BAD_ID',
      'a backup name looks like 20261127T185600Z-1.2.0 (see GET /api/backups/{env})',
    );
  }
  try {
    const config = loadConfig(process.env);
    const store = backupStoreFromConfig(config);
    const exists = (await store.list(env)).find((b) => b.id === id);
    if (!exists) return bad(404, 'BACKUPS.NOT_FOUND', `no backup ${id}`);
    const v = await store.verify(id);
    const record = { id, ok: v.ok, at: new Date().toISOString(), problems: v.problems };
    await createVerificationStore(ledgerContainer(config)).record(record);
    context.log(`backup ${id} verified: ${v.ok ? 'ok' : v.problems.join('; ')}`);
    return json(v.ok ? 200 : 422, {
      ...record,
      state: v.ok ? 'verified' : exists.complete ? 'corrupt' : 'incomplete',
    });
  } catch (err) {
    context.error(`verifying ${id} failed: ${messageOf(err)}`);
    return bad(503, errorCode(err) ?? 'BACKUPS.UNAVAILABLE', 'the backup storage is unavailable');
  }
}

app.http('backupsList', {
  route: 'backups/{env}',
  methods: ['GET'],
  authLevel: 'function',
  handler: listEnvironmentBackups,
});
app.http('backupsVerify', {
  route: 'backups/{env}/{name}/verify',
  methods: ['POST'],
  authLevel: 'function',
  handler: verifyBackup,
});
