/**
 * Backups of an environment (function key):
 *   GET  /api/backups/{env}?limit=N                 newest first (1-200, default 20): id, version, time, size,
 *                                                    parts, state (verified | corrupt | complete | incomplete)
 *   POST /api/backups/{env}/{name}/verify           starts re-reading every part of `<env>/<name>` and comparing
 *                                                    size and sha256 with its manifest (orchestration
 *                                                    backupVerify): 202 { id, backup, statusUrl } + Location,
 *                                                    404 unknown backup
 *   GET  /api/backups/{env}/{name}/verify/{id}      the verification: runtimeStatus, and when Completed its
 *                                                    result { ok, state: verified | corrupt | incomplete,
 *                                                    problems, at } (also recorded: the status page shows it)
 * `{name}` is the backup id without the environment: `20261127T185600Z-1.2.0`.
 */
import { randomBytes } from 'node:crypto';
import { app, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { loadConfig } from '../shared/config';
import { parseBackupId } from '../shared/adapters/backup-store';
import { readInstance } from '../shared/adapters/durable-status';
import { BACKUP_VERIFY_ORCHESTRATOR } from './orchestrators/backupVerify';
import './activities/backups';
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
    const name = req.params.name ?? '';
    const instanceId = `verify-${env}-${name.toLowerCase()}-${randomBytes(4).toString('hex')}`;
    await df.getClient(context).startNew(BACKUP_VERIFY_ORCHESTRATOR, { instanceId, input: { id } });
    context.log(`verification of backup ${id} started: ${instanceId}`);
    const statusUrl = `/api/backups/${env}/${name}/verify/${instanceId}`;
    return {
      ...json(202, { id: instanceId, backup: id, statusUrl }),
      headers: { 'cache-control': 'no-store', location: new URL(statusUrl, req.url).toString() },
    };
  } catch (err) {
    context.error(`verifying ${id} failed: ${messageOf(err)}`);
    return bad(503, errorCode(err) ?? 'BACKUPS.UNAVAILABLE', 'the backup storage is unavailable');
  }
}

export async function getVerification(
  req: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  const env = req.params.env ?? '';
  if (!envOk(env))
    return bad(400, 'BACKUPS.BAD_ENVIRONMENT', `environment must be one of ${ENVIRONMENTS.join(', ')}`);
  const name = req.params.name ?? '';
  const id = `${env}/${name}`;
  const instanceId = req.params.id ?? '';
  // a verification id belongs to its backup: verify-<env>-<name, lower case>-<8 hex>
  if (
    !/^[0-9a-f]{8}$/.test(instanceId.slice(-8)) ||
    instanceId !== `verify-${env}-${name.toLowerCase()}-${instanceId.slice(-8)}`
  ) {
    return bad(
      400,
      'BACKUPS.BAD_VERIFICATION_ID',
      `a verification id of ${id} looks like verify-${env}-${name.toLowerCase()}-0123abcd (from the POST's statusUrl)`,
    );
  }
  try {
    const s = await readInstance(df.getClient(context), instanceId, { showInput: true });
    if (!s || s.name !== BACKUP_VERIFY_ORCHESTRATOR || (s.input as { id?: string } | undefined)?.id !== id) {
      return bad(404, 'BACKUPS.VERIFICATION_NOT_FOUND', `no verification ${instanceId} of ${id}`);
    }
    return json(200, {
      id: instanceId,
      backup: id,
      runtimeStatus: s.runtimeStatus,
      createdTime: s.createdTime,
      lastUpdatedTime: s.lastUpdatedTime,
      result: s.output ?? null,
    });
  } catch (err) {
    context.error(`reading verification ${instanceId} failed: ${messageOf(err)}`);
    return bad(503, errorCode(err) ?? 'BACKUPS.UNAVAILABLE', 'the orchestration store is unavailable');
  }
}

const client = [df.input.durableClient()];
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
  extraInputs: client,
  handler: verifyBackup,
});
app.http('backupsVerification', {
  route: 'backups/{env}/{name}/verify/{id}',
  methods: ['GET'],
  authLevel: 'function',
  extraInputs: client,
  handler: getVerification,
});
