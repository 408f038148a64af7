/**
 * Environment ledger: one JSON blob per environment (`ledger/<env>.json` in LEDGER_CONTAINER) holding
 * the current release and a bounded history. Writes use the blob's ETag (optimistic concurrency):
 * a concurrent writer makes `If-Match` fail with 412 and the update is retried on fresh data, so no
 * record is lost.
 */
import { BlobServiceClient, ContainerClient, RestError } from '@azure/storage-blob';
import { DefaultAzureCredential } from '@azure/identity';
import type { Config } from '../config';
import { PipelineError } from '../domain/errors';

export interface Release {
  version: string;
  sha: string;
  imageDigest?: string;
  imageRef?: string;
  coverage?: number;
  deployedAt: string;
  backupId?: string;
  /** set when the release was deployed past the coverage gate: such a run is never eligible for PROD or Odoo.sh */
  gateOverride?: GateOverride;
  [extra: string]: unknown;
}

interface LedgerDoc {
  environment: string;
  current?: Release;
  history: Release[];
}

export interface Ledger {
  current(env: string): Promise<Release | undefined>;
  record(env: string, release: Release): Promise<void>;
  /** newest first */
  history(env: string, n?: number): Promise<Release[]>;
}

const HISTORY_KEEP = 100;
const ENV_NAME = /^[a-z0-9][a-z0-9-]{0,30}$/;

/** The ledger/intake container from settings: Azurite/connection string locally, managed identity in Azure. */
export function ledgerContainer(config: Config): ContainerClient {
  const conn = config.BACKUP_STORAGE_CONNECTION;
  const accountUrl = config.BACKUP_STORAGE_ACCOUNT_URL;
  const service = conn
    ? BlobServiceClient.fromConnectionString(conn)
    : accountUrl
      ? new BlobServiceClient(accountUrl, new DefaultAzureCredential())
      : undefined;
  if (!service)
    throw new PipelineError(
      'CONFIG.STORAGE_MISSING',
      'BACKUP_STORAGE_CONNECTION or BACKUP_STORAGE_ACCOUNT_URL must be set',
    );
  return service.getContainerClient(config.LEDGER_CONTAINER ?? 'ledger');
}

export function blobError(err: unknown, what: string): PipelineError {
  const status = (err as RestError).statusCode;
  const retryable = status === undefined || status === 429 || status >= 500;
  return new PipelineError(
    retryable ? 'BLOB.UNAVAILABLE' : 'BLOB.FAILED',
    `${what}: ${status ?? (err as Error).message}`,
    retryable,
  );
}

/** Create the container once per process (idempotent). */
export function ensureContainer(container: ContainerClient): () => Promise<void> {
  let ready: Promise<unknown> | undefined;
  return async () => {
    ready ??= container.createIfNotExists().catch((err) => {
      ready = undefined;
      throw blobError(err, `creating container ${container.containerName}`);
    });
    await ready;
  };
}

export async function readJson<T>(container: ContainerClient, name: string): Promise<T | undefined> {
  return (await readJsonWithEtag<T>(container, name))?.value;
}

export async function readJsonWithEtag<T>(
  container: ContainerClient,
  name: string,
): Promise<{ value: T; etag: string } | undefined> {
  let res;
  try {
    res = await container.getBlockBlobClient(name).download();
  } catch (err) {
    if ((err as RestError).statusCode === 404) return undefined;
    throw blobError(err, `reading ${name}`);
  }
  const chunks: Buffer[] = [];
  for await (const c of res.readableStreamBody!) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return { value: JSON.parse(text) as T, etag: res.etag ?? '' };
  } catch {
    throw new PipelineError('BLOB.CORRUPT', `${name} is not valid JSON`);
  }
}

/** Upload JSON; `condition` = 'create' (If-None-Match: *) or an ETag (If-Match). Returns false on a lost race. */
export async function writeJson(
  container: ContainerClient,
  name: string,
  value: unknown,
  condition?: 'create' | string,
): Promise<boolean> {
  const text = JSON.stringify(value);
  try {
    await container.getBlockBlobClient(name).upload(text, Buffer.byteLength(text), {
      blobHTTPHeaders: { blobContentType: 'application/json' },
      conditions:
        condition === 'create' ? { ifNoneMatch: '*' } : condition ? { ifMatch: condition } : undefined,
    });
    return true;
  } catch (err) {
    const status = (err as RestError).statusCode;
    if (condition && (status === 409 || status === 412)) return false;
    throw blobError(err, `writing ${name}`);
  }
}

export function createLedger(container: ContainerClient): Ledger {
  const ensure = ensureContainer(container);
  const blobName = (env: string) => {
    if (!ENV_NAME.test(env))
      throw new PipelineError('LEDGER.BAD_ENVIRONMENT', `invalid environment name ${JSON.stringify(env)}`);
    return `ledger/${env}.json`;
  };
  return {
    async current(env) {
      const doc = await readJson<LedgerDoc>(container, blobName(env));
      return doc?.current;
    },
    async history(env, n = 20) {
      const doc = await readJson<LedgerDoc>(container, blobName(env));
      return (doc?.history ?? []).slice(0, Math.max(0, n));
    },
    async record(env, release) {
      const name = blobName(env);
      await ensure();
      for (let attempt = 0; attempt < 20; attempt++) {
        const existing = await readJsonWithEtag<LedgerDoc>(container, name);
        const doc: LedgerDoc = existing?.value ?? { environment: env, history: [] };
        doc.current = release;
        doc.history = [release, ...doc.history].slice(0, HISTORY_KEEP);
        if (await writeJson(container, name, doc, existing ? existing.etag : 'create')) return;
        await new Promise((r) => setTimeout(r, 5 + Math.floor(Math.random() * 20 * (attempt + 1))));
      }
      throw new PipelineError(
        'LEDGER.CONFLICT',
        `could not record ${release.version} on ${env}: too many concurrent writers`,
        true,
      );
    },
  };
}

// --- eligibility ------------------------------------------------------------------------------------

/** Who deployed a release past the coverage gate, and why (`overrideGate` of POST /api/deployments). */
export interface GateOverride {
  by: string;
  reason: string;
  at: string;
}

/** The intake's record of what the gate decided for a commit (the deliveries store's `commit(sha)`). */
export interface GateRecords {
  commit(sha: string): Promise<{ value: { state: string; reason?: string } } | undefined>;
}

/**
 * The UAT runs that may go further (PROD, Odoo.sh), newest first: only the pipeline's own records
 * count — never a GitHub status. A run deployed past the gate (`gateOverride`) never qualifies, nor
 * one whose commit the intake recorded as blocked or still waiting. A run whose commit has no gate
 * record at all (recorded before gate records existed) is taken as the ledger says.
 */
export async function eligibleUatRuns(
  ledger: Ledger,
  gates: GateRecords | undefined,
  n = 100,
): Promise<Release[]> {
  const runs = (await ledger.history('uat', n)).filter((r) => !r.gateOverride);
  if (!gates) return runs;
  const shas = [...new Set(runs.map((r) => r.sha))];
  const states = new Map(
    await Promise.all(shas.map(async (sha) => [sha, (await gates.commit(sha))?.value.state] as const)),
  );
  return runs.filter((r) => {
    const state = states.get(r.sha);
    return state === undefined || state === 'passed';
  });
}
