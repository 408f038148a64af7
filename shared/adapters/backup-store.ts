/**
 * Backups in Blob Storage (`@azure/storage-blob`; DefaultAzureCredential in Azure, Azurite locally).
 *
 * Layout (container `backups` by default): `<env>/<timestamp>-<version>/` holding the parts
 * (`db.dump[.zst]`, `filestore.tar[.zst]`), `manifest.json` (written last: a backup without a manifest
 * is incomplete and never offered for a restore) and `logs/<name>`.
 *
 * - Streams end to end: a part is read from a Readable (e.g. `SshClient.stream()` of `odoo-ops
 *   backup-db`) into a few reused block buffers (memory ≤ bufferSize × (concurrency + 1)), each full
 *   block sent as one Put Block whose body is the buffer itself; sha256 and size are computed on the
 *   fly. No temp file. (Not `uploadStream`: its BufferScheduler copies every chunk and re-chunks each
 *   block into 16 KiB stream pieces, one socket write each — measurably more CPU per byte.)
 * - Never overwrites: every part (its Put Block List) and the manifest are written with
 *   `If-None-Match: *` ([BACKUP.EXISTS] otherwise). A part is committed only after its source ended
 *   normally; a failed source leaves only uncommitted blocks, which the service discards.
 * - Restores run on the VM (`odoo-ops job start restore --blob`): `assertListed(id)` (manifest present,
 *   parts listed with their sizes, no download) before the job starts, and `readSasUrls(id)` signs one
 *   read-only blob SAS per blob for it; the job hashes every part against the manifest while it restores
 *   into a fresh database and swaps nothing on a mismatch. In-process readers (verification, tools) call
 *   `assertRestorable(id)` (re-reads and hashes every part) and stream with `openPart()`, which hashes
 *   again while streaming and ERRORS AT THE END on a size or sha256 mismatch ([BACKUP.CORRUPT]): treat
 *   that error as fatal (the bytes already consumed are not trustworthy).
 * - Part encodings (e.g. `zstd`) are recorded in the manifest, not as HTTP Content-Encoding (HTTP
 *   clients may decode that transparently, which would break the hashes).
 */
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable, Transform, TransformCallback, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  BlobServiceClient,
  BlockBlobClient,
  BlockBlobCommitBlockListOptions,
  ContainerClient,
  BlobSASPermissions,
  ContainerSASPermissions,
  RestError,
  SASProtocol,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
} from '@azure/storage-blob';
import { PipelineError } from '../domain/errors';
import { planBackupRetention } from '../domain/retention';
import { Logger } from '../log';

export const MANIFEST = 'manifest.json';
export const MANIFEST_FORMAT = 1;

export interface BackupMeta {
  version: string;
  gitSha?: string;
  imageDigest?: string;
  odooVersion?: string;
  pgVersion?: string;
  modules?: string[];
  /** free-form: reason (pre-deploy, refresh…), deployment id… */
  [key: string]: unknown;
}

export interface PartInfo {
  size: number;
  sha256: string;
  /** e.g. `zstd` when the part is compressed */
  contentEncoding?: string;
}

export interface BackupManifest extends BackupMeta {
  format: number;
  id: string;
  environment: string;
  startedAt: string;
  finishedAt: string;
  parts: Record<string, PartInfo>;
}

export interface BackupSummary {
  id: string;
  environment: string;
  version: string;
  createdAt: Date;
  /** manifest present */
  complete: boolean;
  totalSize?: number;
  parts?: string[];
}

export interface VerifyResult {
  ok: boolean;
  problems: string[];
  manifest?: BackupManifest;
}

export type BackupStoreOptions = (
  | { containerClient: ContainerClient }
  | { connectionString: string; container: string }
  | { accountUrl: string; container: string }
) & {
  log?: Logger;
  /** uploadStream buffer size (default 8 MiB) and concurrency (default 4): memory ≈ size × (concurrency + 1) */
  bufferSize?: number;
  concurrency?: number;
  /** clock (tests) */
  now?: () => Date;
};

const ENV_RE = /^[a-z][a-z0-9-]{0,31}$/;
const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
const PART_RE = /^[a-z0-9][a-z0-9._-]{0,99}$/;
const ID_RE = /^([a-z][a-z0-9-]{0,31})\/(\d{8}T\d{6}Z)-([A-Za-z0-9][A-Za-z0-9._+-]{0,63})$/;

function stamp(d: Date): string {
  return d
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

function parseStamp(s: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return new Date(NaN);
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

/** Split a backup id `<env>/<timestamp>-<version>`; throws BACKUP.INVALID_ID. */
export function parseBackupId(id: string): { environment: string; createdAt: Date; version: string } {
  const m = ID_RE.exec(id ?? '');
  if (!m)
    throw new PipelineError(
      'BACKUP.INVALID_ID',
      `"${id}" is not a backup id (<env>/<yyyymmddThhmmssZ>-<version>)`,
    );
  return { environment: m[1], createdAt: parseStamp(m[2]), version: m[3] };
}

/** The id of a backup of `environment` at `version` started at `at`; throws BACKUP.INVALID on bad input. */
export function backupIdAt(environment: string, version: string | undefined, at: Date): string {
  if (!ENV_RE.test(environment ?? ''))
    throw new PipelineError('BACKUP.INVALID', `invalid environment name "${environment}"`);
  if (!VERSION_RE.test(version ?? ''))
    throw new PipelineError('BACKUP.INVALID', `invalid version "${version}" for a backup id`);
  if (Number.isNaN(at.getTime())) throw new PipelineError('BACKUP.INVALID', 'invalid backup start time');
  return `${environment}/${stamp(at)}-${version}`;
}

function blobError(err: unknown, what: string): PipelineError {
  if (err instanceof PipelineError) return err;
  const e = err as RestError & { code?: string };
  const status = e?.statusCode;
  if (status === 409 || status === 412)
    return new PipelineError('BACKUP.EXISTS', `${what}: already exists (backups are never overwritten)`);
  if (status === 404) return new PipelineError('BACKUP.NOT_FOUND', `${what}: not found`);
  if (status === 429 || status === 503)
    return new PipelineError('BLOB.THROTTLED', `${what}: storage is throttling (${status})`, true);
  if (status === 401 || status === 403)
    return new PipelineError(
      'BLOB.FORBIDDEN',
      `${what}: access denied (${status}) — check the identity's Storage Blob Data role`,
    );
  if (status && status >= 500)
    return new PipelineError('BLOB.UNAVAILABLE', `${what}: storage error ${status}`, true);
  const msg = e instanceof Error ? e.message : String(err);
  if (!status && /ECONN|ETIMEDOUT|ENOTFOUND|socket hang up|EAI_AGAIN/i.test(`${e?.code ?? ''} ${msg}`))
    return new PipelineError('BLOB.UNAVAILABLE', `${what}: ${msg}`, true);
  return new PipelineError('BACKUP.FAILED', `${what}: ${msg}`);
}

/** Pass-through that hashes and counts what flows through it. */
class HashCounter extends Transform {
  readonly hash = createHash('sha256');
  size = 0;
  constructor(private readonly expected?: { size: number; sha256: string; label: string }) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (!this.expected) return cb();
    const sha = this.hash.digest('hex');
    if (this.size !== this.expected.size || sha !== this.expected.sha256) {
      return cb(
        new PipelineError(
          'BACKUP.CORRUPT',
          `${this.expected.label} does not match its manifest (size ${this.size} vs ${this.expected.size}, sha256 ${sha.slice(0, 12)}… vs ${this.expected.sha256.slice(0, 12)}…): the restore must be abandoned`,
        ),
      );
    }
    cb();
  }
}

/**
 * A Writable that stores what is written as one block blob: it hashes (sha256) and counts each chunk as
 * it arrives, copies it into one of a few reused block buffers, stages each full block (Put Block) with
 * the buffer itself as the request body — one socket write per block instead of the 16 KiB pieces
 * `uploadStream`'s BufferScheduler re-chunks into — and commits the block list with `If-None-Match: *`
 * only in `_final`, i.e. only after the source ENDED normally. A source that errors destroys it first:
 * the staged blocks stay uncommitted (the service discards them) and nothing becomes visible.
 *
 * Memory is bounded: at most `concurrency` blocks in flight plus the one being filled; when all are
 * busy the write callback waits, which is the backpressure that closes the SSH window and pauses the
 * VM side instead of buffering.
 */
class BlockUpload extends Writable {
  private readonly hash = createHash('sha256');
  private readonly free: Buffer[] = [];
  private allocated = 0;
  private cur: Buffer | undefined;
  private fill = 0;
  private readonly ids: string[] = [];
  private readonly inflight = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private readonly prefix = randomBytes(12).toString('hex');
  private blocked: { resume: () => void; cb: (err?: Error | null) => void } | undefined;
  private digest: string | undefined;
  private failure: Error | undefined;
  size = 0;

  constructor(
    private readonly blob: BlockBlobClient,
    private readonly blockSize: number,
    private readonly concurrency: number,
    private readonly commit: Pick<BlockBlobCommitBlockListOptions, 'blobHTTPHeaders' | 'metadata'>,
  ) {
    super({ highWaterMark: 256 * 1024 });
  }

  get blocks(): number {
    return this.ids.length;
  }

  get sha256(): string {
    this.digest ??= this.hash.digest('hex');
    return this.digest;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.failure) return cb(this.failure);
    this.hash.update(chunk);
    this.size += chunk.length;
    let off = 0;
    const resume = (): void => {
      while (off < chunk.length) {
        if (!this.cur) {
          const buf =
            this.free.pop() ??
            (this.allocated < this.concurrency + 1
              ? (this.allocated++, Buffer.allocUnsafeSlow(this.blockSize))
              : undefined);
          if (!buf) {
            this.blocked = { resume, cb };
            return;
          }
          this.cur = buf;
          this.fill = 0;
        }
        const n = chunk.copy(this.cur, this.fill, off);
        off += n;
        this.fill += n;
        if (this.fill === this.cur.length) this.stage();
      }
      cb();
    };
    resume();
  }

  private stage(): void {
    const buf = this.cur as Buffer;
    const len = this.fill;
    this.cur = undefined;
    this.fill = 0;
    // block ids: same length within a blob, unique per upload (a concurrent writer of the same name stages its own)
    const id = Buffer.from(`${this.prefix}-${String(this.ids.length).padStart(6, '0')}`).toString('base64');
    this.ids.push(id);
    const p: Promise<void> = this.blob
      .stageBlock(id, buf.subarray(0, len), len, { abortSignal: this.abort.signal })
      .then(
        () => {
          this.inflight.delete(p);
          this.free.push(buf);
          const b = this.blocked;
          this.blocked = undefined;
          b?.resume();
        },
        (err: unknown) => {
          this.inflight.delete(p);
          this.fail(err instanceof Error ? err : new Error(String(err)));
        },
      );
    this.inflight.add(p);
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.abort.abort();
    const b = this.blocked;
    this.blocked = undefined;
    if (b) b.cb(err);
    else this.destroy(err);
  }

  private async drain(): Promise<void> {
    while (this.inflight.size) await Promise.all([...this.inflight]);
    if (this.failure) throw this.failure;
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.failure) return cb(this.failure);
    if (this.fill > 0) this.stage();
    this.cur = undefined;
    this.drain()
      .then(() => this.commitOnce())
      .then(
        () => {
          this.free.length = 0;
          cb();
        },
        (err: Error) => {
          this.failure ??= err;
          cb(this.failure);
        },
      );
  }

  /**
   * Put Block List with If-None-Match: *. When the answer is "exists", it may be our own commit whose
   * response was lost and retried by the SDK: the blob is ours if its committed blocks are our ids
   * (they carry this upload's random prefix); anything else is someone else's blob ([BACKUP.EXISTS]).
   */
  private async commitOnce(): Promise<void> {
    try {
      await this.blob.commitBlockList(this.ids, {
        ...this.commit,
        conditions: { ifNoneMatch: '*' },
        abortSignal: this.abort.signal,
      });
    } catch (err) {
      const status = (err as RestError).statusCode;
      if ((status === 409 || status === 412) && this.ids.length > 0) {
        const list = await this.blob.getBlockList('committed').catch(() => undefined);
        const names = list?.committedBlocks?.map((b) => b.name) ?? [];
        if (names.length === this.ids.length && names.every((n, i) => n === this.ids[i])) return;
      }
      throw err;
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.writableFinished) this.abort.abort();
    this.free.length = 0;
    this.cur = undefined;
    cb(err);
  }
}

export class BackupWriter {
  private readonly parts: Record<string, PartInfo> = {};
  private readonly pending = new Set<string>();
  private finished = false;
  readonly startedAt: Date;

  constructor(
    private readonly store: BackupStore,
    readonly id: string,
    readonly environment: string,
    private readonly meta: BackupMeta,
    startedAt: Date,
  ) {
    this.startedAt = startedAt;
  }

  /** Stream one part to Blob (If-None-Match: *); resolves with its size and sha256. */
  async part(
    name: string,
    source: NodeJS.ReadableStream,
    o: { contentEncoding?: string } = {},
  ): Promise<PartInfo> {
    if (this.finished) throw new PipelineError('BACKUP.FINISHED', `backup ${this.id} is already finished`);
    if (!PART_RE.test(name) || name === MANIFEST || name === 'logs')
      throw new PipelineError('BACKUP.INVALID_PART', `invalid part name "${name}"`);
    if (this.parts[name] || this.pending.has(name))
      throw new PipelineError('BACKUP.EXISTS', `part ${name} of ${this.id} was already written`);
    this.pending.add(name);
    const upload = new BlockUpload(
      this.store.container.getBlockBlobClient(`${this.id}/${name}`),
      this.store.bufferSize,
      this.store.concurrency,
      {
        blobHTTPHeaders: { blobContentType: 'application/octet-stream' },
        metadata: o.contentEncoding ? { encoding: o.contentEncoding } : undefined,
      },
    );
    const started = Date.now();
    try {
      // a source error (e.g. the SSH command failed) destroys the upload before its commit, and an upload
      // error destroys the source (the remote command then stops on a closed channel)
      await pipeline(source as Readable, upload);
    } catch (err) {
      throw blobError(err, `uploading ${this.id}/${name}`);
    } finally {
      this.pending.delete(name);
    }
    const info: PartInfo = {
      size: upload.size,
      sha256: upload.sha256,
      ...(o.contentEncoding ? { contentEncoding: o.contentEncoding } : {}),
    };
    this.parts[name] = info;
    const secs = (Date.now() - started) / 1000;
    this.store.log?.info('backup part stored', {
      backup: this.id,
      part: name,
      size: info.size,
      blocks: upload.blocks,
      mbPerS: +(info.size / 1e6 / Math.max(secs, 0.001)).toFixed(1),
    });
    return info;
  }

  /** Write manifest.json (last): the backup becomes complete and restorable. */
  async finish(extra: Partial<BackupMeta> = {}): Promise<BackupManifest> {
    if (this.finished) throw new PipelineError('BACKUP.FINISHED', `backup ${this.id} is already finished`);
    if (this.pending.size)
      throw new PipelineError('BACKUP.INCOMPLETE', `parts still uploading: ${[...this.pending].join(', ')}`);
    if (!Object.keys(this.parts).length)
      throw new PipelineError('BACKUP.INCOMPLETE', `backup ${this.id} has no parts`);
    const manifest: BackupManifest = {
      ...this.meta,
      ...extra,
      format: MANIFEST_FORMAT,
      id: this.id,
      environment: this.environment,
      version: this.meta.version,
      startedAt: this.startedAt.toISOString(),
      finishedAt: this.store.now().toISOString(),
      parts: { ...this.parts },
    };
    const body = JSON.stringify(manifest, null, 2);
    try {
      await this.store.container
        .getBlockBlobClient(`${this.id}/${MANIFEST}`)
        .upload(body, Buffer.byteLength(body), {
          conditions: { ifNoneMatch: '*' },
          blobHTTPHeaders: { blobContentType: 'application/json' },
        });
    } catch (err) {
      throw blobError(err, `writing ${this.id}/${MANIFEST}`);
    }
    this.finished = true;
    this.store.log?.info('backup complete', {
      backup: this.id,
      parts: Object.keys(this.parts),
      totalSize: Object.values(this.parts).reduce((a, p) => a + p.size, 0),
    });
    return manifest;
  }
}

/**
 * The permissions of the SAS a VM uploads a backup with: create + write (Put Block needs write), never
 * read, list or delete. Overwrites are refused by the uploads themselves (If-None-Match: * on every commit).
 */
export const UPLOAD_SAS_PERMISSIONS = 'cw';

/**
 * The permissions of the SAS URLs a VM restores a backup with: read, on one blob each (a blob SAS: it
 * cannot list, write or delete, nor read any other blob — another backup, another environment's).
 */
export const READ_SAS_PERMISSIONS = 'r';

export class BackupStore {
  readonly container: ContainerClient;
  /** set when built from an account URL (managed identity): what user-delegation SAS are asked of */
  private readonly service?: BlobServiceClient;
  readonly log?: Logger;
  readonly bufferSize: number;
  readonly concurrency: number;
  readonly now: () => Date;
  private ensured = false;

  constructor(o: BackupStoreOptions) {
    if ('containerClient' in o) this.container = o.containerClient;
    else if ('connectionString' in o)
      this.container = BlobServiceClient.fromConnectionString(o.connectionString).getContainerClient(
        o.container,
      );
    else {
      // DefaultAzureCredential: managed identity in Azure, developer credentials elsewhere
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { DefaultAzureCredential } = require('@azure/identity') as typeof import('@azure/identity');
      this.service = new BlobServiceClient(o.accountUrl, new DefaultAzureCredential());
      this.container = this.service.getContainerClient(o.container);
    }
    this.log = o.log;
    this.bufferSize = o.bufferSize ?? 8 * 1024 * 1024;
    this.concurrency = o.concurrency ?? 4;
    this.now = o.now ?? (() => new Date());
  }

  /** Create the container when missing (local/Azurite; in Azure Bicep creates it). */
  async ensureContainer(): Promise<void> {
    if (this.ensured) return;
    try {
      await this.container.createIfNotExists();
    } catch (err) {
      throw blobError(err, `creating container ${this.container.containerName}`);
    }
    this.ensured = true;
  }

  /** Start a backup `<env>/<timestamp>-<version>` (timestamp: `at`, default now). */
  begin(environment: string, meta: BackupMeta, at?: Date): BackupWriter {
    const startedAt = at ?? this.now();
    const id = backupIdAt(environment, meta?.version, startedAt);
    return new BackupWriter(this, id, environment, meta, startedAt);
  }

  /**
   * The first backup id at or after `at` (one-second steps, at most `tries`) under which nothing is
   * stored yet: two backups of the same version within a second (a quick redeploy) get their own ids.
   */
  async freeIdAt(environment: string, version: string, at: Date, tries = 30): Promise<string> {
    for (let n = 0; n < tries; n++) {
      const id = backupIdAt(environment, version, new Date(at.getTime() + n * 1000));
      let taken: boolean;
      try {
        taken = !(await this.container.listBlobsFlat({ prefix: `${id}/` }).next()).done;
      } catch (err) {
        throw blobError(err, `listing ${id}`);
      }
      if (!taken) return id;
    }
    throw new PipelineError(
      'BACKUP.EXISTS',
      `no free backup id for ${environment} ${version} near ${at.toISOString()}`,
    );
  }

  /**
   * A URL of the container with a SAS a VM uploads one backup with (`odoo-ops job start backup --blob`):
   * create + write only — it can write blobs, never read, list or delete one — valid from a few
   * minutes ago (clock skew) for `minutes`. With a shared key (Azurite, a connection string) a service
   * SAS signed with it; with a token credential (the function's managed identity) a user-delegation SAS
   * (the identity needs a Storage Blob Data role on the account, which it has to write backups). A secret:
   * never logged, handed to the VM on stdin only.
   */
  async uploadSasUrl(minutes: number): Promise<string> {
    const now = this.now();
    const startsOn = new Date(now.getTime() - 5 * 60_000);
    const expiresOn = new Date(now.getTime() + Math.max(1, minutes) * 60_000);
    const https = this.container.url.startsWith('https:');
    const permissions = ContainerSASPermissions.parse(UPLOAD_SAS_PERMISSIONS);
    const protocol = https ? SASProtocol.Https : SASProtocol.HttpsAndHttp;
    try {
      if (this.container.credential instanceof StorageSharedKeyCredential)
        return await this.container.generateSasUrl({ permissions, startsOn, expiresOn, protocol });
      if (!this.service)
        throw new PipelineError(
          'CONFIG.BACKUP_SAS',
          'the backup store has neither a shared key nor a token credential to sign an upload SAS with',
        );
      const key = await this.service.getUserDelegationKey(startsOn, expiresOn);
      const sas = generateBlobSASQueryParameters(
        { containerName: this.container.containerName, permissions, startsOn, expiresOn, protocol },
        key,
        this.container.accountName,
      ).toString();
      return `${this.container.url}?${sas}`;
    } catch (err) {
      throw blobError(err, `making an upload SAS for ${this.container.containerName}`);
    }
  }

  /**
   * One read-only blob SAS URL per blob of backup `id` a VM restores it from (`odoo-ops job start restore
   * --blob`): `manifest.json` and each part the manifest lists (or `names`), each URL able to read that
   * blob only, valid from a few minutes ago (clock skew) for `minutes`. Signed like `uploadSasUrl`: the
   * shared key (Azurite, a connection string) or a user-delegation key (managed identity). Secrets: never
   * logged, handed to the VM on stdin only.
   */
  async readSasUrls(id: string, minutes: number, names?: string[]): Promise<string[]> {
    parseBackupId(id);
    const blobs = [MANIFEST, ...(names ?? Object.keys((await this.manifest(id)).parts))];
    for (const n of blobs)
      if (!PART_RE.test(n)) throw new PipelineError('BACKUP.INVALID_PART', `invalid part name "${n}"`);
    const now = this.now();
    const startsOn = new Date(now.getTime() - 5 * 60_000);
    const expiresOn = new Date(now.getTime() + Math.max(1, minutes) * 60_000);
    const protocol = this.container.url.startsWith('https:') ? SASProtocol.Https : SASProtocol.HttpsAndHttp;
    const permissions = BlobSASPermissions.parse(READ_SAS_PERMISSIONS);
    try {
      if (this.container.credential instanceof StorageSharedKeyCredential)
        return await Promise.all(
          [...new Set(blobs)].map((n) =>
            this.container
              .getBlockBlobClient(`${id}/${n}`)
              .generateSasUrl({ permissions, startsOn, expiresOn, protocol }),
          ),
        );
      if (!this.service)
        throw new PipelineError(
          'CONFIG.BACKUP_SAS',
          'the backup store has neither a shared key nor a token credential to sign a read SAS with',
        );
      const key = await this.service.getUserDelegationKey(startsOn, expiresOn);
      return [...new Set(blobs)].map((n) => {
        const blob = this.container.getBlockBlobClient(`${id}/${n}`);
        const sas = generateBlobSASQueryParameters(
          {
            containerName: this.container.containerName,
            blobName: `${id}/${n}`,
            permissions,
            startsOn,
            expiresOn,
            protocol,
          },
          key,
          this.container.accountName,
        ).toString();
        return `${blob.url}?${sas}`;
      });
    } catch (err) {
      if (err instanceof PipelineError) throw err;
      throw blobError(err, `making read SAS URLs for ${id}`);
    }
  }

  /** Backups of an environment, newest first (incomplete ones flagged `complete: false`). */
  async list(environment: string): Promise<BackupSummary[]> {
    if (!ENV_RE.test(environment ?? ''))
      throw new PipelineError('BACKUP.INVALID', `invalid environment name "${environment}"`);
    const ids: string[] = [];
    try {
      for await (const item of this.container.listBlobsByHierarchy('/', { prefix: `${environment}/` })) {
        if (item.kind === 'prefix') {
          const id = item.name.replace(/\/$/, '');
          if (ID_RE.test(id)) ids.push(id);
        }
      }
    } catch (err) {
      if ((err as RestError).statusCode === 404) return [];
      throw blobError(err, `listing backups of ${environment}`);
    }
    const out: BackupSummary[] = [];
    for (const id of ids) {
      const p = parseBackupId(id);
      const m = await this.manifest(id).catch((e) => {
        if (
          e instanceof PipelineError &&
          (e.code === 'BACKUP.NOT_FOUND' || e.code === 'BACKUP.MANIFEST_INVALID')
        )
          return undefined;
        throw e;
      });
      out.push({
        id,
        environment: p.environment,
        version: p.version,
        createdAt: p.createdAt,
        complete: !!m,
        ...(m
          ? { totalSize: Object.values(m.parts).reduce((a, x) => a + x.size, 0), parts: Object.keys(m.parts) }
          : {}),
      });
    }
    return out.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1));
  }

  /** The newest complete backup of an environment. */
  async latest(environment: string): Promise<BackupSummary | undefined> {
    return (await this.list(environment)).find((b) => b.complete);
  }

  async manifest(id: string): Promise<BackupManifest> {
    parseBackupId(id);
    let text: string;
    try {
      const buf = await this.container.getBlockBlobClient(`${id}/${MANIFEST}`).downloadToBuffer();
      text = buf.toString('utf8');
    } catch (err) {
      const e = blobError(err, `reading the manifest of ${id}`);
      if (e.code === 'BACKUP.NOT_FOUND')
        throw new PipelineError('BACKUP.NOT_FOUND', `backup ${id} has no manifest (missing or incomplete)`);
      throw e;
    }
    let m: BackupManifest;
    try {
      m = JSON.parse(text) as BackupManifest;
    } catch {
      throw new PipelineError('BACKUP.MANIFEST_INVALID', `manifest of ${id} is not JSON`);
    }
    const partsOk =
      m &&
      typeof m.parts === 'object' &&
      m.parts !== null &&
      Object.entries(m.parts).every(
        ([n, p]) => PART_RE.test(n) && Number.isInteger(p?.size) && /^[0-9a-f]{64}$/.test(p?.sha256 ?? ''),
      );
    if (!partsOk || m.id !== id || m.format !== MANIFEST_FORMAT)
      throw new PipelineError(
        'BACKUP.MANIFEST_INVALID',
        `manifest of ${id} is malformed or belongs to another backup`,
      );
    return m;
  }

  /** Re-read every part and compare size and sha256 with the manifest. */
  async verify(id: string): Promise<VerifyResult> {
    let manifest: BackupManifest;
    try {
      manifest = await this.manifest(id);
    } catch (err) {
      return { ok: false, problems: [(err as Error).message] };
    }
    const problems: string[] = [];
    for (const [name, info] of Object.entries(manifest.parts)) {
      try {
        const body = await this.download(`${id}/${name}`);
        const counter = new HashCounter();
        await pipeline(
          body,
          counter,
          new Writable({
            write: (_c, _e, cb) => cb(),
          }),
        );
        const sha = counter.hash.digest('hex');
        if (counter.size !== info.size)
          problems.push(`${name}: size ${counter.size} differs from the manifest (${info.size})`);
        else if (sha !== info.sha256)
          problems.push(`${name}: sha256 ${sha} differs from the manifest (${info.sha256})`);
      } catch (err) {
        const e = blobError(err, `${id}/${name}`);
        if (e.retryable) throw e;
        problems.push(`${name}: ${e.code === 'BACKUP.NOT_FOUND' ? 'missing' : e.message}`);
      }
    }
    return { ok: problems.length === 0, problems, manifest };
  }

  /** verify() and throw [BACKUP.CORRUPT] unless every part matches: call before any restore. */
  async assertRestorable(id: string): Promise<BackupManifest> {
    const v = await this.verify(id);
    if (!v.ok || !v.manifest)
      throw new PipelineError(
        'BACKUP.CORRUPT',
        `backup ${id} cannot be used for a restore: ${v.problems.join('; ')}`,
      );
    return v.manifest;
  }

  /**
   * The check before a restore job is started on a VM (which hashes every part against the manifest
   * itself while it restores, and swaps nothing on a mismatch): the manifest is present and valid, and
   * every part it lists is stored with the manifest's size — one listing, no download. Throws
   * [BACKUP.NOT_FOUND] (no manifest), [BACKUP.MANIFEST_INVALID], or [BACKUP.CORRUPT] naming each part
   * missing or of another size; Blob throttling stays retryable.
   */
  async assertListed(id: string): Promise<BackupManifest> {
    const manifest = await this.manifest(id);
    const stored = new Map<string, number | undefined>();
    try {
      for await (const b of this.container.listBlobsFlat({ prefix: `${id}/` }))
        stored.set(b.name.slice(id.length + 1), b.properties.contentLength);
    } catch (err) {
      throw blobError(err, `listing ${id}`);
    }
    const problems = Object.entries(manifest.parts).flatMap(([name, info]) => {
      if (!stored.has(name)) return [`${name} is missing`];
      const size = stored.get(name);
      return size === info.size ? [] : [`${name} is ${String(size)} bytes, the manifest says ${info.size}`];
    });
    if (problems.length)
      throw new PipelineError(
        'BACKUP.CORRUPT',
        `backup ${id} cannot be used for a restore: ${problems.join('; ')}`,
      );
    return manifest;
  }

  /**
   * Stream a part for a restore. The stream is hashed as it flows and errors with [BACKUP.CORRUPT]
   * at the end when size or sha256 differ from the manifest: treat that error as fatal.
   */
  async openPart(id: string, name: string, manifest?: BackupManifest): Promise<Readable> {
    const m = manifest ?? (await this.manifest(id));
    const info = m.parts[name];
    if (!info)
      throw new PipelineError(
        'BACKUP.NOT_FOUND',
        `backup ${id} has no part ${name} (parts: ${Object.keys(m.parts).join(', ')})`,
      );
    const body = await this.download(`${id}/${name}`).catch((err) => {
      throw blobError(err, `${id}/${name}`);
    });
    const check = new HashCounter({ size: info.size, sha256: info.sha256, label: `${id}/${name}` });
    body.on('error', (e) => check.destroy(blobError(e, `${id}/${name}`)));
    return body.pipe(check);
  }

  /** Save a log next to the backup (`<id>/logs/<name>`); logs may be replaced. */
  async saveLog(id: string, name: string, content: string | NodeJS.ReadableStream): Promise<void> {
    parseBackupId(id);
    if (!PART_RE.test(name)) throw new PipelineError('BACKUP.INVALID_PART', `invalid log name "${name}"`);
    const blob = this.container.getBlockBlobClient(`${id}/logs/${name}`);
    try {
      if (typeof content === 'string') {
        await blob.upload(content, Buffer.byteLength(content), {
          blobHTTPHeaders: { blobContentType: 'text/plain; charset=utf-8' },
        });
      } else {
        const pass = new PassThrough();
        (content as Readable).on('error', (e) => pass.destroy(e));
        (content as Readable).pipe(pass);
        await blob.uploadStream(pass, 1024 * 1024, 2, {
          blobHTTPHeaders: { blobContentType: 'text/plain; charset=utf-8' },
        });
      }
    } catch (err) {
      throw blobError(err, `saving log ${name} of ${id}`);
    }
  }

  async readLog(id: string, name: string): Promise<string> {
    try {
      return (await this.container.getBlockBlobClient(`${id}/logs/${name}`).downloadToBuffer()).toString(
        'utf8',
      );
    } catch (err) {
      throw blobError(err, `reading log ${name} of ${id}`);
    }
  }

  /** Delete every blob of a backup. */
  async delete(id: string): Promise<number> {
    parseBackupId(id);
    let n = 0;
    try {
      for await (const b of this.container.listBlobsFlat({ prefix: `${id}/` })) {
        await this.container.deleteBlob(b.name, { deleteSnapshots: 'include' });
        n++;
      }
    } catch (err) {
      throw blobError(err, `deleting backup ${id}`);
    }
    return n;
  }

  /**
   * Delete backups older than keepDays (the newest complete one is always kept; incomplete ones after a
   * day). In Azure a lifecycle rule does the same as a safety net.
   */
  async applyRetention(
    environment: string,
    keepDays: number,
    now: Date = this.now(),
    opts: { keepAtLeast?: number; dryRun?: boolean } = {},
  ): Promise<{ kept: string[]; deleted: string[] }> {
    const backups = await this.list(environment);
    const plan = planBackupRetention(backups, keepDays, now, { keepAtLeast: opts.keepAtLeast });
    if (!opts.dryRun) for (const id of plan.deleted) await this.delete(id);
    this.log?.info('backup retention applied', {
      environment,
      keepDays,
      kept: plan.kept.length,
      deleted: plan.deleted,
      dryRun: !!opts.dryRun,
    });
    return plan;
  }

  private async download(blobName: string): Promise<Readable> {
    const res = await this.container
      .getBlockBlobClient(blobName)
      .download(0, undefined, { maxRetryRequests: 5 });
    if (!res.readableStreamBody) throw new PipelineError('BACKUP.FAILED', `no body for ${blobName}`);
    return res.readableStreamBody as Readable;
  }
}
