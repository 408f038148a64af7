/**
 * GET /api/deployments/{id}/logs (function key) — the logs a deploy saved to Blob next to its backup
 * (`<backup id>/logs/<name>`: migration.log, container.log, ops-history.log; written when a deploy
 * fails after the stop, see functions/activities/deploy.ts `saveLogs`).
 *
 *   ?name=migration.log   only that log        ?tail=N   only the last N lines of each (1-100000)
 *
 * 200 `{ id, runtimeStatus, outcome, backupId, logs: [{ name, path, size, text, truncated }], message? }`
 * (an empty list with a message when the deploy saved none), 400 bad id/name/tail, 404 no such deploy,
 * 503 when the orchestration store or the storage cannot be read.
 */
import { app, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import type { DurableOrchestrationStatus } from 'durable-functions';
import { loadConfig } from '../shared/config';
import { errorCode, messageOf } from '../shared/domain/errors';
import { parseBackupId } from '../shared/adapters/backup-store';
import { readInstance } from '../shared/adapters/durable-status';
import { backupStoreFromConfig } from './status';

const ID = /^deploy-[a-z0-9-]+-[A-Za-z0-9._-]+$/;
const NAME = /^[a-z0-9][a-z0-9._-]{0,99}$/;
/** Largest text returned per log (the end is kept: that is where a failure shows). */
const MAX_CHARS = 256 * 1024;
const DEPLOY_NAMES = new Set(['deployUat', 'deployProd', 'deployOdooSh']);

const json = (status: number, body: unknown): HttpResponseInit => ({
  status,
  jsonBody: body,
  headers: { 'cache-control': 'no-store' },
});
const bad = (status: number, error: string, message: string) => json(status, { error, message });

export interface LogEntry {
  name: string;
  path: string;
  size: number;
  text: string;
  truncated: boolean;
}

function tailLines(text: string, n: number | undefined): { text: string; truncated: boolean } {
  let out = text;
  let truncated = false;
  if (n !== undefined) {
    const lines = out.replace(/\n$/, '').split('\n');
    if (lines.length > n) {
      out = lines.slice(-n).join('\n') + '\n';
      truncated = true;
    }
  }
  if (out.length > MAX_CHARS) {
    out = out.slice(-MAX_CHARS);
    truncated = true;
  }
  return { text: out, truncated };
}

export async function deploymentLogs(
  req: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  const id = req.params.id ?? '';
  if (!ID.test(id))
    return bad(400, 'LOGS.BAD_ID', 'a deployment id looks like deploy-<env>-<version>-<sha12>');
  const name = req.query.get('name');
  if (name !== null && !NAME.test(name))
    return bad(400, 'LOGS.BAD_NAME', 'name must be a log file name like migration.log');
  const rawTail = req.query.get('tail');
  const tail = rawTail === null || rawTail === '' ? undefined : Number(rawTail);
  if (tail !== undefined && (!Number.isInteger(tail) || tail < 1 || tail > 100_000))
    return bad(400, 'LOGS.BAD_TAIL', 'tail must be an integer from 1 to 100000');

  let s: DurableOrchestrationStatus | undefined;
  try {
    // `{}`: the client's default status (no input needed here)
    s = await readInstance(df.getClient(context), id, {});
  } catch (err) {
    context.error(`reading deployment ${id} failed: ${messageOf(err)}`);
    return bad(503, errorCode(err) ?? 'LOGS.UNAVAILABLE', 'the orchestration store is unavailable');
  }
  if (!s || !DEPLOY_NAMES.has(s.name)) return bad(404, 'LOGS.NOT_FOUND', `no deployment ${id}`);

  const out = (s.output ?? {}) as { outcome?: string; backupId?: string; logs?: unknown };
  const cs = (s.customStatus ?? {}) as { backupId?: string; outcome?: string };
  const backupId = out.backupId ?? cs.backupId;
  const base = {
    id,
    runtimeStatus: s.runtimeStatus,
    outcome: out.outcome ?? cs.outcome ?? null,
    backupId: backupId ?? null,
  };
  if (!backupId)
    return json(200, { ...base, logs: [], message: 'this deploy has no backup, so no logs were saved' });
  try {
    parseBackupId(backupId);
  } catch {
    return json(200, {
      ...base,
      logs: [],
      message: `the backup id ${JSON.stringify(backupId)} recorded by this deploy is not valid`,
    });
  }

  try {
    const store = backupStoreFromConfig(loadConfig(process.env));
    const prefix = `${backupId}/logs/`;
    const found: Array<{ name: string; size: number }> = [];
    for await (const b of store.container.listBlobsFlat({ prefix })) {
      const n = b.name.slice(prefix.length);
      if (NAME.test(n) && (name === null || n === name))
        found.push({ name: n, size: b.properties.contentLength ?? 0 });
    }
    found.sort((a, b) => a.name.localeCompare(b.name));
    const logs: LogEntry[] = [];
    for (const f of found) {
      const t = tailLines(await store.readLog(backupId, f.name), tail);
      logs.push({ name: f.name, path: `${prefix}${f.name}`, size: f.size, ...t });
    }
    const message = logs.length
      ? undefined
      : name !== null
        ? `no log named ${name} was saved for this deploy`
        : out.outcome === 'Succeeded'
          ? 'this deploy succeeded: logs are saved only when a deploy fails after the stop'
          : 'no logs were saved for this deploy';
    return json(200, { ...base, logs, ...(message ? { message } : {}) });
  } catch (err) {
    context.error(`reading logs of ${id} failed: ${messageOf(err)}`);
    const code = errorCode(err);
    if (code === 'BACKUP.NOT_FOUND')
      return json(200, { ...base, logs: [], message: 'no logs were saved for this deploy' });
    return bad(503, code ?? 'LOGS.UNAVAILABLE', 'the backup storage is unavailable');
  }
}

app.http('deploymentLogs', {
  route: 'deployments/{id}/logs',
  methods: ['GET'],
  authLevel: 'function',
  extraInputs: [df.input.durableClient()],
  handler: deploymentLogs,
});
