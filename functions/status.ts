/**
 * GET /api/status (function key; in Azure also behind App Service authentication / Entra ID) — the
 * operator's overview as JSON: per environment (uat, prod) the running version and since when, the
 * last deploy outcome, the deploy in progress with its step and progress, the lane's queue, pending
 * approvals with expiry, the newest backups with sizes and verification state, the last refresh.
 *
 * This file only READS (ledger, durable instances, lanes, backup listings, recorded verifications), each
 * source on its own with a time bound; shared/domain/status-view.ts assembles the document. A source
 * that fails or is too slow shows up as `{ ok: false, error }` in its section (and in `problems`) and
 * the answer is still 200. Query: `?backups=N` (1-50, default 5) backups per environment.
 */
import { app, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import type { DurableClient } from 'durable-functions';
import { loadConfig, type Config } from '../shared/config';
import { createLedger, ledgerContainer } from '../shared/adapters/ledger';
import { BackupStore } from '../shared/adapters/backup-store';
import { createVerificationStore } from '../shared/adapters/backup-verifications';
import { readInstance } from '../shared/adapters/durable-status';
import { PipelineError } from '../shared/domain/errors';
import {
  assembleStatus,
  type BackupListing,
  type InstanceInfo,
  type LedgerRead,
  type Read,
  type StatusDocument,
} from '../shared/domain/status-view';
import { pipelineVersion } from '../shared/version';

export const ENVIRONMENTS = ['uat', 'prod'] as const;
/** How far back the status looks for deploy / refresh instances. */
const LOOKBACK_DAYS = 90;
/** Upper bound for one source (the page must answer even when a dependency hangs). */
const PART_TIMEOUT_MS = 10_000;

/** Run `fn`, bounded by `ms`; a failure or a timeout becomes `{ ok: false, error }`. */
export async function bounded<T>(what: string, fn: () => Promise<T>, ms = PART_TIMEOUT_MS): Promise<Read<T>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Read<T>>((resolve) => {
    timer = setTimeout(
      () =>
        resolve({
          ok: false,
          error: new PipelineError(
            'STATUS.TIMEOUT',
            `${what} did not answer within ${Math.round(ms / 1000)} s`,
            true,
          ),
        }),
      ms,
    );
  });
  try {
    return await Promise.race([
      fn().then(
        (value): Read<T> => ({ ok: true, value }),
        (error: unknown): Read<T> => ({ ok: false, error }),
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function backupStoreFromConfig(config: Config): BackupStore {
  if (config.BACKUP_STORAGE_CONNECTION)
    return new BackupStore({
      connectionString: config.BACKUP_STORAGE_CONNECTION,
      container: config.BACKUP_CONTAINER ?? 'backups',
    });
  if (config.BACKUP_STORAGE_ACCOUNT_URL)
    return new BackupStore({
      accountUrl: config.BACKUP_STORAGE_ACCOUNT_URL,
      container: config.BACKUP_CONTAINER ?? 'backups',
    });
  throw new PipelineError(
    'CONFIG.STORAGE_MISSING',
    'BACKUP_STORAGE_CONNECTION or BACKUP_STORAGE_ACCOUNT_URL must be set',
  );
}

async function laneOf(client: DurableClient, env: string): Promise<InstanceInfo | undefined> {
  // `{}`: the status as the client gives it by default (as before readInstance was used here)
  return (await readInstance(client, `lane-${env}`, {})) as unknown as InstanceInfo | undefined;
}

/** Backups of an environment with their recorded verification (shown ones only: `limit`). */
export async function listBackups(config: Config, env: string, limit: number): Promise<BackupListing[]> {
  const store = backupStoreFromConfig(config);
  const verifications = createVerificationStore(ledgerContainer(config));
  const list = (await store.list(env)).slice(0, limit);
  return Promise.all(
    list.map(async (b) => {
      const v = b.complete ? await verifications.get(b.id).catch(() => undefined) : undefined;
      return { ...b, ...(v ? { verification: { ok: v.ok, at: v.at, problems: v.problems } } : {}) };
    }),
  );
}

export interface CollectOptions {
  backups?: number;
  now?: Date;
  timeoutMs?: number;
}

/** Read every source (each bounded, failures kept) and assemble the status document. */
export async function collectStatus(
  context: InvocationContext,
  o: CollectOptions = {},
): Promise<StatusDocument> {
  const now = o.now ?? new Date();
  const backupCount = o.backups ?? 5;
  const ms = o.timeoutMs ?? PART_TIMEOUT_MS;
  let config: Config | undefined;
  let configError: unknown;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    configError = err;
  }
  const needConfig =
    <T>(fn: (c: Config) => Promise<T>) =>
    (): Promise<T> =>
      config ? fn(config) : Promise.reject(configError);
  let client: DurableClient | undefined;
  let clientError: unknown;
  try {
    client = df.getClient(context);
  } catch (err) {
    clientError = err;
  }
  const needClient =
    <T>(fn: (c: DurableClient) => Promise<T>) =>
    (): Promise<T> =>
      client ? fn(client) : Promise.reject(clientError);

  const ledger = needConfig((c) => Promise.resolve(createLedger(ledgerContainer(c))));
  const [instances, ...perEnv] = await Promise.all([
    bounded(
      'the orchestration store',
      needClient(
        async (c) =>
          (await c.getStatusBy({
            createdTimeFrom: new Date(now.getTime() - LOOKBACK_DAYS * 86_400_000),
          })) as unknown as InstanceInfo[],
      ),
      ms,
    ),
    ...ENVIRONMENTS.map(async (env) => {
      const [led, lane, backups] = await Promise.all([
        bounded(
          `the ${env} ledger`,
          async (): Promise<LedgerRead> => {
            const l = await ledger();
            const [current, history] = await Promise.all([l.current(env), l.history(env, 10)]);
            return { current, history };
          },
          ms,
        ),
        bounded(
          `the ${env} lane`,
          needClient((c) => laneOf(c, env)),
          ms,
        ),
        bounded(
          `the ${env} backups`,
          needConfig((c) => listBackups(c, env, backupCount)),
          ms,
        ),
      ]);
      return { env, led, lane, backups };
    }),
  ]);
  const doc = assembleStatus({
    now,
    environments: [...ENVIRONMENTS],
    instances,
    ledger: Object.fromEntries(perEnv.map((p) => [p.env, p.led])),
    lanes: Object.fromEntries(perEnv.map((p) => [p.env, p.lane])),
    backups: Object.fromEntries(perEnv.map((p) => [p.env, p.backups])),
    backupCount,
    runtime: process.env.PIPELINE_RUNTIME ?? 'local',
    appVersion: pipelineVersion(),
    displayTimeZone: config?.DISPLAY_TIME_ZONE ?? 'UTC',
  });
  for (const p of doc.problems)
    context.warn(`status: ${p.environment}.${p.part} unavailable: [${p.code}] ${p.message}`);
  return doc;
}

/** `?backups=N` → N, or an error message. */
export function parseBackupCount(raw: string | null): number | string {
  if (raw === null || raw === '') return 5;
  const n = Number(raw);
  return Number.isInteger(n) && n >= 1 && n <= 50 ? n : 'backups must be an integer from 1 to 50';
}

export async function status(req: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const backups = parseBackupCount(req.query.get('backups'));
  if (typeof backups === 'string')
    return {
      status: 400,
      jsonBody: { error: 'STATUS.BAD_REQUEST', message: backups },
      headers: { 'cache-control': 'no-store' },
    };
  const doc = await collectStatus(context, { backups });
  return { status: 200, jsonBody: doc, headers: { 'cache-control': 'no-store' } };
}

app.http('status', {
  route: 'status',
  methods: ['GET'],
  authLevel: 'function',
  extraInputs: [df.input.durableClient()],
  handler: status,
});
