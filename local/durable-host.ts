/**
 * The real Durable Task engine for the embedded host (issue #19, first step): the .NET WebJobs host of
 * local/durable-host/ (Microsoft.Azure.WebJobs.Extensions.DurableTask 3.19.0, Azure Storage provider)
 * runs in a child process on the local Azurite (blob, queue, table); this Node process runs the app's
 * very `df.app.*` registrations when the extension asks for an orchestrator episode or an activity.
 *
 * - Build: `dotnet build` of local/durable-host on first use, into
 *   node_modules/.cache/odoo-mta-durable-host/<hash of the project's files>/ (so a changed project is
 *   rebuilt, an unchanged one never). Packages come from NuGet through the machine's configured feeds
 *   (no other download). No .NET SDK 8+: a DURABLE_HOST.NO_DOTNET error that says what to install.
 * - Protocol: NDJSON over the child's stdin/stdout (stdout carries only protocol lines; the host's logs
 *   go to stderr). See local/durable-host/Program.cs.
 * - The durable client: the extension's own HTTP management API (its `rpcBaseUrl`, loopback), the same
 *   API `df.getClient()` calls in Azure; `clientData` is the binding data a JS client input receives.
 * - Task hub and provider options: host.json's `extensions.durableTask`, %SETTING% references resolved
 *   from the environment and shared/config.ts defaults, with local overrides (`LOCAL_DURABLE_OPTIONS`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
} from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { InvocationContext } from '@azure/functions';
import { SETTINGS } from '../shared/config';
import { PipelineError } from '../shared/domain/errors';
import type { Logger } from '../shared/log';
import type { RegisteredFunction } from './functions-core';

const PROJECT_FILES = ['DurableHost.csproj', 'Program.cs'];

/** local/durable-host, from the sources (jest, ts) or from dist/local. */
export function durableHostProjectDir(): string {
  for (const d of [
    path.join(__dirname, 'durable-host'),
    path.join(__dirname, '..', '..', 'local', 'durable-host'),
  ])
    if (existsSync(path.join(d, 'DurableHost.csproj'))) return d;
  throw new PipelineError(
    'DURABLE_HOST.MISSING',
    `local/durable-host/DurableHost.csproj not found near ${__dirname}`,
  );
}

function repoRoot(from: string): string {
  let d = from;
  while (!existsSync(path.join(d, 'package.json'))) {
    const up = path.dirname(d);
    if (up === d) throw new PipelineError('DURABLE_HOST.MISSING', `no package.json above ${from}`);
    d = up;
  }
  return d;
}

/** sha256 of the project's files (names and contents): the build cache key. */
export function durableHostHash(projectDir = durableHostProjectDir()): string {
  const h = createHash('sha256');
  for (const f of PROJECT_FILES) {
    h.update(f + '\0');
    h.update(readFileSync(path.join(projectDir, f)));
    h.update('\0');
  }
  return h.digest('hex').slice(0, 16);
}

/** The installed .NET SDK major versions (empty when `dotnet` is missing or has no SDK). */
export function dotnetSdkMajors(dotnet = 'dotnet'): number[] {
  const r = spawnSync(dotnet, ['--list-sdks'], { encoding: 'utf8', timeout: 60000 });
  if (r.error || r.status !== 0) return [];
  return r.stdout
    .split('\n')
    .map((l) => Number(/^(\d+)\./.exec(l.trim())?.[1]))
    .filter((n) => Number.isInteger(n));
}

const DOTNET_ENV = {
  DOTNET_CLI_TELEMETRY_OPTOUT: '1',
  DOTNET_NOLOGO: '1',
  DOTNET_SKIP_FIRST_TIME_EXPERIENCE: '1',
  DOTNET_GENERATE_ASPNET_CERTIFICATE: 'false',
};

export interface BuiltHost {
  dll: string;
  /** true when this call built it (false: taken from the cache) */
  built: boolean;
  buildMs: number;
}

/**
 * The host's DurableHost.dll, built on first use and cached on the project's hash. Concurrent callers
 * each build into their own folder and the first rename wins.
 */
export async function ensureDurableHostBuilt(
  opts: { cacheDir?: string; dotnet?: string; log?: Logger } = {},
): Promise<BuiltHost> {
  const projectDir = durableHostProjectDir();
  const hash = durableHostHash(projectDir);
  const cacheDir =
    opts.cacheDir ?? path.join(repoRoot(projectDir), 'node_modules', '.cache', 'odoo-mta-durable-host');
  const out = path.join(cacheDir, hash);
  const dll = path.join(out, 'DurableHost.dll');
  if (existsSync(dll)) return { dll, built: false, buildMs: 0 };
  const dotnet = opts.dotnet ?? 'dotnet';
  const majors = dotnetSdkMajors(dotnet);
  if (!majors.some((m) => m >= 8))
    throw new PipelineError(
      'DURABLE_HOST.NO_DOTNET',
      majors.length
        ? `the local Durable Task engine needs the .NET SDK 8 or later; found SDK ${majors.join(', ')}. Install a newer one (Debian/Ubuntu: apt-get install dotnet-sdk-8.0, or see https://learn.microsoft.com/dotnet/core/install/linux)`
        : `the local Durable Task engine needs the .NET SDK 8 or later, and \`${dotnet}\` was not found (or lists no SDK). Install it (Debian/Ubuntu: apt-get install dotnet-sdk-8.0, or see https://learn.microsoft.com/dotnet/core/install/linux) and run again`,
    );
  const work = path.join(cacheDir, `${hash}.build-${process.pid}-${Date.now()}`);
  const src = path.join(work, 'src');
  mkdirSync(src, { recursive: true });
  for (const f of PROJECT_FILES) cpSync(path.join(projectDir, f), path.join(src, f));
  opts.log?.info('building the local Durable Task host (dotnet build, first use of this version only)', {
    out,
  });
  const t0 = performance.now();
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(
      dotnet,
      [
        'build',
        path.join(src, 'DurableHost.csproj'),
        '-c',
        'Release',
        '-o',
        path.join(work, 'out'),
        '-nologo',
      ],
      { cwd: src, env: { ...process.env, ...DOTNET_ENV }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0
        ? resolve(text)
        : reject(
            new PipelineError(
              'DURABLE_HOST.BUILD_FAILED',
              `dotnet build of local/durable-host failed (exit ${code}); a restore needs the NuGet feed configured on this machine:\n${text.slice(-3000)}`,
              true,
            ),
          ),
    );
  }).catch((err: unknown) => {
    rmSync(work, { recursive: true, force: true });
    throw err;
  });
  const buildMs = Math.round(performance.now() - t0);
  try {
    renameSync(path.join(work, 'out'), out);
  } catch (err) {
    if (!existsSync(dll)) throw err; // another build won the race: use its output
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  opts.log?.info('local Durable Task host built', { buildMs, warnings: /(\d+) Warning/.exec(output)?.[1] });
  return { dll, built: true, buildMs };
}

/** Removes cached builds other than the current one (they are never used again). */
export function pruneDurableHostCache(cacheDir: string, keep: string): void {
  if (!existsSync(cacheDir)) return;
  for (const name of readdirSync(cacheDir))
    if (name !== keep && !name.includes('.build-'))
      rmSync(path.join(cacheDir, name), { recursive: true, force: true });
}

/** host.json's extensions.durableTask with %SETTING% references resolved (environment, then config defaults). */
export function durableTaskOptions(
  hostJson: unknown,
  env: NodeJS.ProcessEnv = process.env,
): Record<string, unknown> {
  const section = (hostJson as { extensions?: { durableTask?: unknown } })?.extensions?.durableTask;
  if (!section || typeof section !== 'object')
    throw new PipelineError('CONFIG.INVALID', 'host.json has no extensions.durableTask section');
  const resolve = (v: unknown): unknown => {
    if (typeof v === 'string')
      return v.replace(/%([A-Za-z0-9_]+)%/g, (_m, key: string) => {
        const value = env[key] || (SETTINGS as Record<string, { default?: string }>)[key]?.default;
        if (value === undefined)
          throw new PipelineError(
            'CONFIG.INVALID',
            `host.json durableTask refers to %${key}% but ${key} is not set`,
          );
        return value;
      });
    if (Array.isArray(v)) return v.map(resolve);
    if (v && typeof v === 'object')
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolve(x)]));
    return v;
  };
  return resolve(section) as Record<string, unknown>;
}

/** Deep merge of plain objects (b wins). */
function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      v &&
      typeof v === 'object' &&
      !Array.isArray(v) &&
      prev &&
      typeof prev === 'object' &&
      !Array.isArray(prev)
        ? merge(prev as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/**
 * What the local host changes from host.json: the provider polls its queues at most every second (host.json
 * says 10 s, which suits a billed storage account, not a developer waiting on a deploy), one partition, and
 * short queue visibility timeouts (default 5 minutes): after a crash, work that was in flight is picked up
 * again that much later.
 * - control queue (orchestrator episodes): 1 minute, the lowest the extension accepts (it refuses < 1 min);
 * - work-item queue (activities): 30 s. The extension does not check this one; a running activity keeps
 *   its message invisible only because DTFx renews it (checked every 5 s, renewed once it is due within
 *   30 s), so much lower values risk a second copy of a running activity on a busy machine. The crash matrix
 *   holds an activity 75 s and checks it is not delivered twice (test/e2e/deploy-uat-crash.test.ts).
 */
export const LOCAL_PROVIDER_OVERRIDES = {
  storageProvider: {
    maxQueuePollingInterval: '00:00:01',
    partitionCount: 1,
    workItemQueueVisibilityTimeout: '00:00:30',
    controlQueueVisibilityTimeout: '00:01:00',
  },
};

/**
 * The extension's own local RPC endpoint (an HTTP listener on 127.0.0.1:17071, or 30000-31000) has no
 * authentication: any local process, or a web page's cross-origin text/plain POST, could start, raise,
 * terminate or purge through it. It is off unless `localRpcEndpoint: true` (the standalone test
 * only); the management API is then reached through the NDJSON channel (`DurableHostHandle.request`),
 * which the embedded host serves only behind its master key.
 */
export const NO_LOCAL_RPC_ENDPOINT = { localRpcEndpointEnabled: false };

export interface DurableHostOptions {
  functions: RegisteredFunction[];
  /** AzureWebJobsStorage: Azurite with blob, queue and table endpoints */
  storageConnection: string;
  /** host.json's durableTask section, resolved (see durableTaskOptions) */
  durableTask: Record<string, unknown>;
  log: Logger;
  /** the public base of the management webhooks in the client data; default http://127.0.0.1:7071 */
  publicBaseUrl?: string;
  /** the management webhooks' base itself (wins over publicBaseUrl): the embedded host's guarded durable client port */
  webhookUrl?: string;
  /** hook to add extra inputs (e.g. the durable client) to activity contexts */
  prepareContext?: (ctx: InvocationContext, fn: RegisteredFunction) => void;
  dotnet?: string;
  cacheDir?: string;
  startTimeoutMs?: number;
  /** debugging aid: every protocol line (requests with their history, answers) appended to this file */
  traceFile?: string;
  /**
   * keep the extension's unauthenticated local RPC HTTP endpoint on (default false). Only for callers that
   * are not the embedded host (the standalone real-engine test, the bench child).
   */
  localRpcEndpoint?: boolean;
}

/** One request to the extension's management API (path relative to …/durabletask/). */
export interface DurableApiRequest {
  method: string;
  /** the full URL as the client addressed it (the extension builds its answer's URLs from its own webhook base) */
  url: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface DurableApiResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** The binding data a JS `df.input.durableClient()` receives (what the Functions host sends). */
export interface DurableClientData {
  taskHubName: string;
  rpcBaseUrl: string;
  baseUrl?: string;
  [k: string]: unknown;
}

export interface DurableHostHandle {
  clientData: DurableClientData;
  /** the extension's own HTTP endpoint: empty unless started with `localRpcEndpoint: true` */
  rpcBaseUrl: string;
  /** a management API request through the channel (works with the local RPC endpoint off) */
  request(req: DurableApiRequest): Promise<DurableApiResponse>;
  taskHubName: string;
  pid: number;
  child: ChildProcess;
  /** process start → extension ready (client data received), ms */
  startMs: number;
  build: BuiltHost;
  stop(): Promise<void>;
}

interface Request {
  id: number;
  kind: 'orchestrator' | 'activity' | 'ready';
  name?: string;
  input?: string;
  client?: DurableClientData;
}

const triggerOf = (fn: RegisteredFunction) =>
  Object.values(fn.metadata.bindings ?? {}).find((b) => /Trigger$/i.test(String(b.type)))?.type as
    | string
    | undefined;

/** Starts the .NET host (building it first if needed) and serves its invocations until stop(). */
export async function startDurableHost(opts: DurableHostOptions): Promise<DurableHostHandle> {
  const build = await ensureDurableHostBuilt({ cacheDir: opts.cacheDir, dotnet: opts.dotnet, log: opts.log });
  const byName = new Map<string, RegisteredFunction>();
  const list: { name: string; trigger: string }[] = [];
  for (const fn of opts.functions) {
    const trigger = triggerOf(fn);
    if (trigger !== 'orchestrationTrigger' && trigger !== 'activityTrigger') continue;
    byName.set(`${trigger}:${fn.metadata.name}`, fn);
    list.push({ name: fn.metadata.name, trigger });
  }
  const durableTask = merge(
    merge(opts.durableTask, LOCAL_PROVIDER_OVERRIDES),
    opts.localRpcEndpoint ? {} : NO_LOCAL_RPC_ENDPOINT,
  );
  const env: NodeJS.ProcessEnv = { ...process.env, ...DOTNET_ENV };
  delete env.CONTAINER_NAME; // would make the extension write its event logs to stdout (our protocol channel)
  Object.assign(env, {
    AzureWebJobsStorage: opts.storageConnection,
    FUNCTIONS_WORKER_RUNTIME: 'node',
    DURABLE_HOST_FUNCTIONS: JSON.stringify(list),
    DURABLE_HOST_OPTIONS: JSON.stringify(durableTask),
    DURABLE_HOST_WEBHOOK_URL:
      opts.webhookUrl ??
      `${(opts.publicBaseUrl ?? 'http://127.0.0.1:7071').replace(/\/$/, '')}/runtime/webhooks/durabletask`,
  });
  const t0 = performance.now();
  const child = spawn(opts.dotnet ?? 'dotnet', [build.dll], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const log = opts.log;
  let stderrTail = '';
  let cannotStart = ''; // Program.cs's one line when the WebJobs host failed to start
  const stderrLines = createInterface({ input: child.stderr! });
  stderrLines.on('line', (line) => {
    stderrTail = (stderrTail + line + '\n').slice(-4000);
    if (line.startsWith('durable-host: could not start:')) cannotStart = line;
    if (/\b(fail|crit)\b|Exception/.test(line)) log.warn(line, { component: 'durable-host' });
    else log.debug(line, { component: 'durable-host' });
  });
  const stderrClosed = new Promise<void>((resolve) => stderrLines.once('close', () => resolve()));
  const send = (msg: unknown) => {
    if (opts.traceFile) appendFileSync(opts.traceFile, JSON.stringify(msg) + '\n');
    if (child.stdin?.writable) child.stdin.write(JSON.stringify(msg) + '\n');
  };
  const httpPending = new Map<number, (r: DurableApiResponse) => void>();
  let nextRid = 0;
  let onReady: (c: DurableClientData) => void = () => undefined;
  const ready = new Promise<DurableClientData>((resolve) => (onReady = resolve));

  const invoke = async (req: Request): Promise<unknown> => {
    const fn = byName.get(
      `${req.kind === 'orchestrator' ? 'orchestrationTrigger' : 'activityTrigger'}:${req.name}`,
    );
    if (!fn) throw new Error(`[DURABLE.UNKNOWN_FUNCTION] ${req.kind} '${req.name}' is not registered`);
    const trigger = fn.metadata.bindings
      ? Object.entries(fn.metadata.bindings).find(([, b]) => /Trigger$/i.test(String(b.type)))
      : undefined;
    const bindings = Object.entries(fn.metadata.bindings ?? {}).map(([name, b]) => ({ ...b, name }));
    const ctx = new InvocationContext({
      functionName: fn.metadata.name,
      options: {
        trigger: { ...(trigger?.[1] ?? {}), name: trigger?.[0] ?? 'context' } as never,
        extraInputs: bindings.filter(
          (b) => b.direction === 'in' && !/Trigger$/i.test(String(b.type)),
        ) as never,
        extraOutputs: bindings.filter((b) => b.direction === 'out') as never,
      },
      logHandler: (level, ...args) => {
        const msg = args
          .map((a) => (typeof a === 'string' ? a : a instanceof Error ? a.message : JSON.stringify(a)))
          .join(' ');
        const fields = { function: fn.metadata.name };
        if (level === 'error' || level === 'critical') log.error(msg, fields);
        else if (level === 'warning') log.warn(msg, fields);
        else if (level === 'debug' || level === 'trace') log.debug(msg, fields);
        else log.info(msg, fields);
      },
    });
    if (req.kind === 'activity') opts.prepareContext?.(ctx, fn);
    let input = JSON.parse(req.input ?? 'null') as unknown;
    // durable-functions JSON-encodes string inputs; the Functions Node worker parses string data once
    if (req.kind === 'activity' && typeof input === 'string') {
      try {
        input = JSON.parse(input);
      } catch {
        /* a plain string */
      }
    }
    return fn.handler(input, ctx);
  };

  createInterface({ input: child.stdout! }).on('line', (line) => {
    let req: Request;
    try {
      req = JSON.parse(line) as Request;
    } catch {
      log.warn(`durable host wrote a non-protocol line: ${line.slice(0, 200)}`);
      return;
    }
    if (req.kind === 'ready' && req.client) return onReady(req.client);
    if ((req.kind as string) === 'http') {
      const answer = req as unknown as DurableApiResponse & { rid: number };
      const done = httpPending.get(answer.rid);
      httpPending.delete(answer.rid);
      done?.({ status: answer.status, headers: answer.headers ?? {}, body: answer.body ?? '' });
      return;
    }
    // debugging aid: every request and answer of the protocol appended to this file
    if (opts.traceFile) appendFileSync(opts.traceFile, line + '\n');
    void invoke(req).then(
      (result) =>
        send({ id: req.id, ok: true, result: JSON.stringify(result === undefined ? null : result) }),
      (err: unknown) =>
        send({
          id: req.id,
          ok: false,
          message: err instanceof Error ? err.message : String(err),
          stack: err instanceof Error ? (err.stack ?? '') : '',
        }),
    );
  });

  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code === null ? `signal ${signal}` : `code ${code}`)),
  );
  void exited.then(() => {
    // the host is gone: no answer will come
    for (const [rid, done] of httpPending) {
      httpPending.delete(rid);
      done({
        status: 503,
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: JSON.stringify({ error: 'the local Durable Task host has stopped' }),
      });
    }
  });
  const timeoutMs = opts.startTimeoutMs ?? 120000;
  let timer: NodeJS.Timeout | undefined;
  const clientData = await Promise.race([
    ready,
    exited.then(async (how) => {
      await stderrClosed; // its last lines (the reason) are read
      throw new PipelineError(
        'DURABLE_HOST.START_FAILED',
        `the local Durable Task host exited (${how}) before it was ready` +
          (cannotStart ? `: ${cannotStart.replace('durable-host: ', '')}` : '') +
          `\n${stderrTail}`,
        true,
      );
    }),
    new Promise<never>((_r, reject) => {
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(
          new PipelineError(
            'DURABLE_HOST.START_FAILED',
            `the local Durable Task host was not ready after ${timeoutMs} ms:\n${stderrTail}`,
            true,
          ),
        );
      }, timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
  const startMs = Math.round(performance.now() - t0);
  log.info('local Durable Task host ready', { taskHub: clientData.taskHubName, startMs, pid: child.pid });
  return {
    clientData,
    rpcBaseUrl: clientData.rpcBaseUrl ?? '',
    taskHubName: clientData.taskHubName,
    request: (r) =>
      new Promise<DurableApiResponse>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null)
          return resolve({
            status: 503,
            headers: { 'content-type': 'application/json; charset=utf-8' },
            body: JSON.stringify({ error: 'the local Durable Task host has stopped' }),
          });
        const rid = ++nextRid;
        httpPending.set(rid, resolve);
        send({
          kind: 'http',
          rid,
          method: r.method,
          url: r.url,
          headers: r.headers ?? {},
          body: r.body ?? '',
        });
      }),
    pid: child.pid!,
    child,
    startMs,
    build,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const t = setTimeout(() => child.kill('SIGKILL'), 15000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(t);
    },
  };
}

/** `node dist/local/durable-host.js`: build (or find in the cache) the host now, e.g. as a CI install step. */
if (require.main === module) {
  const t0 = performance.now();
  ensureDurableHostBuilt().then(
    (b) =>
      console.log(
        `durable host ${b.built ? `built in ${b.buildMs} ms` : 'already built (cache)'}: ${b.dll} (${Math.round(performance.now() - t0)} ms)`,
      ),
    (err: unknown) => {
      console.error((err as Error).message);
      process.exit(1);
    },
  );
}
