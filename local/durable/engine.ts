/**
 * Embedded Durable Functions engine: runs the app's REAL `durable-functions` orchestrator handlers
 * (registered with `df.app.orchestration`) and activity handlers (`df.app.activity`) without the
 * Functions host, doing what the Durable extension does:
 *
 * - Each episode builds the orchestration trigger ({ history, input, instanceId, ... }) with a fresh
 *   deep copy of the history (the library mutates it) and a fresh InvocationContext, calls the
 *   handler, and interprets the returned state (schema V3: all actions since the start, nested).
 * - Task ids: the library numbers tasks in the order they are first yielded (children of
 *   Task.all/any in order, each distinct task once), and allocates more ids by itself while
 *   processing a completion (a retry's back-off timer and next attempt, a long timer's next
 *   segment). The engine mirrors that numbering in its persisted task model and delivers ONE new
 *   event per episode, so the ids it allocates for a completion always come before the ids of the
 *   tasks the generator yields after it — exactly the library's order. When the library exposes its
 *   sequence counter the engine cross-checks it and fails the instance loudly instead of hanging.
 * - Retries (callActivityWithRetry / callSubOrchestratorWithRetry) are the host's job: attempt,
 *   back-off timer, attempt...; delay k = first × backoff^(k−1), capped by the max interval; after the
 *   retry timeout, remaining attempts fail at once with the last error. (The library always waits for
 *   one more timer after the last failure; the engine fires it immediately.)
 * - Timers longer than maximumShortTimerDuration are split into segments (like the extension);
 *   cancelled timers (`timer.cancel()` after losing a Task.any race) are removed. Like Azure, an
 *   orchestration that returns with an uncancelled pending timer stays Running until it fires.
 * - Persistence in SQLite (see history-store.ts): every state change is committed before its side
 *   effect starts, so after SIGKILL a restart resumes from the database: no completed activity runs
 *   again and no raised event is lost. An activity that was running when the process died runs again
 *   (at-least-once, like the real extension).
 */
import { InvocationContext } from '@azure/functions';
import { randomUUID } from 'node:crypto';
import type { RegisteredFunction } from '../functions-core';
import { PipelineError } from '../../shared/domain/errors';
import { createLogger, type Logger } from '../../shared/log';
import {
  clientData as buildClientData,
  handleClientRequest as routeClientRequest,
  type ClientRequest,
  type ClientResponse,
} from './client-api';
import { realClock, TestClock, type Clock } from './clock';
import {
  ActionType,
  DEFAULT_HTTP_ASYNC_SLEEP_MS,
  ENGINE_SCHEMA_VERSION,
  HistoryEventType,
  historyEventName,
  isTerminal,
  LONG_RUNNING_TIMER_INTERVAL_DURATION,
  LONG_RUNNING_TIMER_INTERVAL_MS,
  MAX_CUSTOM_STATUS_CHARS,
  MAXIMUM_SHORT_TIMER_DURATION,
  MAXIMUM_SHORT_TIMER_MS,
  RuntimeStatus,
} from './enums';
import {
  HistoryStore,
  type ActivityRow,
  type InboxRow,
  type InstanceRow,
  type TimerRow,
} from './history-store';

export interface DurableEngineOptions {
  /** better-sqlite3 file (WAL); ':memory:' allowed in unit tests */
  dbPath: string;
  /** registrations (trigger binding type 'orchestrationTrigger' / 'activityTrigger') */
  functions: () => RegisteredFunction[];
  clock?: Clock;
  log?: Logger;
  taskHubName?: string;
  verbose?: boolean;
  /** hook to let the host add extraInputs (e.g. durable client data) to activity InvocationContexts */
  prepareContext?: (ctx: InvocationContext, fn: RegisteredFunction) => void;
  /** activities running at once (default 8) */
  maxConcurrentActivities?: number;
  /** page size of listInstances / the query API when no `top` is given (default 100) */
  queryPageSize?: number;
  /** how long stop() waits for in-flight work (default 10 s) */
  stopTimeoutMs?: number;
}

export interface DurableStatus {
  name: string;
  instanceId: string;
  createdTime: string;
  lastUpdatedTime: string;
  input: unknown;
  output: unknown;
  runtimeStatus: string;
  customStatus: unknown;
  history?: unknown[];
}

/** FailureDetails as the extension puts it on TaskFailed / SubOrchestrationInstanceFailed events. */
export interface FailureDetailsPayload {
  ErrorType: string;
  ErrorMessage: string;
  StackTrace?: string;
  IsNonRetriable: boolean;
  Properties?: Record<string, unknown>;
  InnerFailure?: FailureDetailsPayload;
}

type HistoryEvent = { EventType: number; EventId: number; IsPlayed?: boolean; Timestamp: string } & Record<
  string,
  unknown
>;

interface RetryState {
  first: number;
  max: number;
  backoff: number;
  maxInterval: number;
  timeout: number;
  /** mirrors the library's RetryableTask.attemptNumber (1 + failures so far) */
  attemptNumber: number;
  firstAttemptAt: number;
  lastFailure?: FailureDetailsPayload;
  lastReason?: string;
}

interface Group {
  kind: 'activity' | 'timer' | 'sub';
  actionIndex: number;
  name?: string;
  /** JSON text of the (decoded) input */
  input?: string | null;
  childId?: string;
  retry?: RetryState;
  fireAt?: number;
  long?: boolean;
  canceled?: boolean;
}

interface TaskRef {
  g: number;
  role: 'attempt' | 'retryTimer' | 'timer';
}

interface Model {
  nextId: number;
  actionCount: number;
  /** signature (type:name) of every action seen, to detect non-deterministic replays */
  sigs?: string[];
  groups: Group[];
  open: Record<string, TaskRef>;
  /** orchestration returned while uncancelled timers were pending: output waits for them */
  returned?: boolean;
  returnedOutput?: string | null;
}

interface ActionLike {
  actionType: number;
  [k: string]: unknown;
}

interface OrchestratorStateLike {
  isDone: boolean;
  actions: ActionLike[][];
  output?: unknown;
  error?: string;
  customStatus?: unknown;
  failureDetails?: FailureDetailsPayload;
}

/** Side effects decided by an episode, applied inside its transaction. */
type Op =
  | {
      kind: 'activity';
      taskId: number;
      name: string;
      input: string | null;
      immediateFailure?: { reason: string; details: FailureDetailsPayload };
    }
  | { kind: 'timer'; taskId: number; fireAt: number }
  | { kind: 'cancelTimer'; taskId: number }
  | {
      kind: 'sub';
      taskId: number;
      name: string;
      input: string | null;
      childId: string;
      immediateFailure?: { reason: string; details: FailureDetailsPayload };
    };

const emptyModel = (): Model => ({ nextId: 0, actionCount: 0, sigs: [], groups: [], open: {} });

function actionSignature(a: ActionLike): string {
  const name = a.functionName ?? a.externalEventName ?? '';
  return `${a.actionType}:${typeof name === 'string' ? name : ''}`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function toJsonText(v: unknown, what: string): string | null {
  if (v === undefined) return null;
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch (e) {
    throw new PipelineError(
      'DURABLE.NOT_SERIALIZABLE',
      `${what} is not JSON-serializable: ${(e as Error).message}`,
    );
  }
  return s === undefined ? null : s;
}

function parseJsonText(s: string | null | undefined): unknown {
  if (s === null || s === undefined) return undefined;
  return JSON.parse(s);
}

/** The library JSON-encodes string inputs of activities and continueAsNew (Utils.processInput). */
function decodeProcessedInput(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

function safeStringify(v: unknown): string {
  try {
    const s = JSON.stringify(v);
    if (s !== undefined) return s;
  } catch {
    /* fall through */
  }
  return String(v);
}

/** Builds FailureDetails from whatever an activity threw (Error, string, object, undefined...). */
export function failureFromThrown(err: unknown): FailureDetailsPayload {
  if (err instanceof Error) {
    // With an ExceptionPropertiesProvider registered, the library's activity wrapper replaces the
    // message by a JSON payload {errorType, errorMessage, properties, ...} the extension parses.
    try {
      const p = JSON.parse(err.message) as Record<string, unknown>;
      if (p && typeof p.errorType === 'string' && typeof p.errorMessage === 'string') {
        return {
          ErrorType: p.errorType,
          ErrorMessage: p.errorMessage,
          StackTrace: typeof p.stackTrace === 'string' ? p.stackTrace : err.stack,
          IsNonRetriable: p.isNonRetriable === true,
          Properties:
            p.properties && typeof p.properties === 'object'
              ? (p.properties as Record<string, unknown>)
              : undefined,
        };
      }
    } catch {
      /* a plain message */
    }
    return {
      ErrorType: err.name || 'Error',
      ErrorMessage: err.message,
      StackTrace: err.stack,
      IsNonRetriable: false,
    };
  }
  const msg = typeof err === 'string' ? err : err === undefined ? 'undefined was thrown' : safeStringify(err);
  return { ErrorType: 'Error', ErrorMessage: msg, IsNonRetriable: false };
}

const OUT_OF_PROC_LABEL = '$OutOfProcData$:';

/** The orchestrator handler throws OrchestrationFailureError: "<x>\n\n$OutOfProcData$:<state JSON>". */
function parseOrchestratorError(e: unknown): {
  message: string;
  details?: FailureDetailsPayload;
  customStatus?: unknown;
  hasCustomStatus: boolean;
} {
  const raw = e instanceof Error ? e.message : String(e);
  const i = raw.indexOf(OUT_OF_PROC_LABEL);
  if (i >= 0) {
    try {
      const st = JSON.parse(raw.slice(i + OUT_OF_PROC_LABEL.length)) as OrchestratorStateLike;
      const message = typeof st.error === 'string' && st.error ? st.error : raw.slice(0, i).trim();
      return {
        message,
        details: st.failureDetails,
        customStatus: st.customStatus,
        hasCustomStatus: 'customStatus' in st,
      };
    } catch {
      /* fall through */
    }
  }
  return {
    message: raw,
    details: e instanceof Error ? failureFromThrown(e) : undefined,
    hasCustomStatus: false,
  };
}

function flattenActions(state: OrchestratorStateLike): ActionLike[] {
  const out: ActionLike[] = [];
  const seen = new Set<unknown>();
  const walk = (list: unknown): void => {
    if (!Array.isArray(list)) return;
    for (const a of list) {
      if (Array.isArray(a)) {
        walk(a);
        continue;
      }
      if (!a || typeof a !== 'object') continue;
      const act = a as ActionLike;
      if (act.actionType === ActionType.WhenAll || act.actionType === ActionType.WhenAny) {
        walk(act.compoundActions);
        continue;
      }
      if (seen.has(act)) continue; // the same task inside several Task.all/any: one id
      seen.add(act);
      out.push(act);
    }
  };
  walk(state.actions);
  return out;
}

const UNSUPPORTED: Record<number, string> = {
  [ActionType.CallEntity]: 'callEntity',
  [ActionType.CallHttp]: 'callHttp',
  [ActionType.SignalEntity]: 'signalEntity',
  [ActionType.LockEntities]: 'lock (entities)',
  [ActionType.ReleaseEntities]: 'entity lock release',
};

// eslint-disable-next-line no-control-regex -- control characters are exactly what ids may not contain
const INSTANCE_ID_RE = /^[^/\\#?\u0000-\u001f\u007f]{1,256}$/;

export class DurableEngine {
  private readonly store: HistoryStore;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly verbose: boolean;
  private readonly taskHubName: string;
  private readonly maxActivities: number;
  private readonly pageSize: number;
  private started = false;
  private stopped = false;
  private busy = 0;
  private readonly activeInstances = new Set<string>();
  private readonly again = new Set<string>();
  private readonly actQueue: ActivityRow[] = [];
  private readonly actInFlight = new Set<number>();
  private readonly armed = new Map<number, () => void>();
  private readonly idleWaiters: Array<() => void> = [];
  private readonly completionWaiters = new Map<string, Array<() => void>>();
  private readonly detachSettler?: () => void;

  constructor(private readonly opts: DurableEngineOptions) {
    this.store = new HistoryStore(opts.dbPath);
    this.clock = opts.clock ?? realClock;
    this.log = opts.log ?? createLogger({ fields: { component: 'durable' } });
    this.verbose = opts.verbose ?? false;
    this.taskHubName = opts.taskHubName ?? 'LocalTaskHub';
    this.maxActivities = Math.max(1, opts.maxConcurrentActivities ?? 8);
    this.pageSize = Math.max(1, opts.queryPageSize ?? 100);
    if (this.clock instanceof TestClock) this.detachSettler = this.clock.addSettler(() => this.idle());
  }

  // ------------------------------------------------------------------ lifecycle

  /** Resumes pending work found in the database (crash recovery). */
  async start(): Promise<void> {
    if (this.stopped)
      throw new PipelineError('DURABLE.STOPPED', 'the durable engine was stopped; create a new one');
    if (this.started) return;
    this.started = true;
    const timers = this.store.allTimers();
    const acts = this.store.allActivities();
    const work = this.store.instancesWithWork();
    if (timers.length || acts.length || work.length) {
      this.log.info('durable engine resuming', {
        timers: timers.length,
        activities: acts.length,
        instancesWithWork: work.length,
      });
    }
    for (const t of timers) this.armTimer(t);
    for (const a of acts) this.enqueueActivity(a);
    for (const id of work) this.kick(id);
  }

  /** Waits for in-flight work to settle (bounded by stopTimeoutMs) and closes the database. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const cancel of this.armed.values()) cancel();
    this.armed.clear();
    this.actQueue.length = 0;
    const timeout = this.opts.stopTimeoutMs ?? 10000;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.idle(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeout);
        timer.unref();
      }),
    ]);
    if (timer) clearTimeout(timer);
    if (this.busy > 0)
      this.log.warn('durable engine stopped with work in flight; it resumes on the next start', {
        inFlight: this.busy,
      });
    this.detachSettler?.();
    this.store.close();
    for (const ws of this.completionWaiters.values()) for (const w of ws) w();
    this.completionWaiters.clear();
  }

  /** Resolves when no episode or activity is running or queued. */
  idle(): Promise<void> {
    if (this.busy === 0 && this.actQueue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private checkIdle(): void {
    if (this.busy === 0 && (this.actQueue.length === 0 || this.stopped)) {
      const ws = this.idleWaiters.splice(0);
      for (const w of ws) w();
    }
  }

  // ------------------------------------------------------------------ public API

  async startNew(name: string, opts: { instanceId?: string; input?: unknown } = {}): Promise<string> {
    this.assertOpen();
    if (typeof name !== 'string' || !name.trim())
      throw new PipelineError('DURABLE.BAD_REQUEST', 'orchestrator name must be a non-empty string');
    const fn = this.findFunction(name, 'orchestrationTrigger');
    if (!fn) {
      throw new PipelineError(
        'DURABLE.UNKNOWN_ORCHESTRATOR',
        `no orchestrator function named '${name}' is registered (registered: ${this.namesOf('orchestrationTrigger').join(', ') || 'none'})`,
      );
    }
    const id = opts.instanceId ?? randomUUID().replace(/-/g, '');
    if (typeof id !== 'string' || !INSTANCE_ID_RE.test(id) || id.trim() !== id) {
      throw new PipelineError(
        'DURABLE.INVALID_INSTANCE_ID',
        `instance id ${JSON.stringify(id)} is invalid: 1-256 characters, no '/', '\\', '#', '?', control characters or surrounding spaces`,
      );
    }
    const input = toJsonText(opts.input, 'orchestration input');
    const now = this.clock.now();
    this.store.tx(() => {
      const existing = this.store.getInstance(id);
      if (existing && !isTerminal(existing.status)) {
        throw new PipelineError(
          'DURABLE.INSTANCE_EXISTS',
          `an instance with id '${id}' already exists and is ${existing.status}; wait for it to finish or terminate it first`,
        );
      }
      if (existing) this.store.deleteInstance(id);
      this.createInstanceRow(id, fn.metadata.name, input, now, null);
    });
    this.log.info('orchestration scheduled', { instanceId: id, function: fn.metadata.name });
    this.kick(id);
    return id;
  }

  getStatus(
    instanceId: string,
    opts: { showHistory?: boolean; showInput?: boolean } = {},
  ): DurableStatus | undefined {
    this.assertOpen();
    const row = this.store.getInstance(instanceId);
    if (!row) return undefined;
    return this.toStatus(row, opts.showHistory ?? false, opts.showInput ?? true);
  }

  listInstances(
    filter: {
      runtimeStatus?: string[];
      createdFrom?: Date;
      createdTo?: Date;
      top?: number;
      continuationToken?: string;
    } = {},
  ): {
    instances: DurableStatus[];
    continuationToken?: string;
  } {
    this.assertOpen();
    let afterSeq: number | undefined;
    if (filter.continuationToken) {
      try {
        const parsed = JSON.parse(Buffer.from(filter.continuationToken, 'base64url').toString('utf8')) as {
          after?: unknown;
        };
        if (typeof parsed.after !== 'number') throw new Error('no position');
        afterSeq = parsed.after;
      } catch {
        throw new PipelineError(
          'DURABLE.BAD_REQUEST',
          'the continuation token is not one this engine issued',
        );
      }
    }
    const top = filter.top ?? this.pageSize;
    const rows = this.store.listInstances({
      statuses: filter.runtimeStatus,
      createdFrom: filter.createdFrom?.getTime(),
      createdTo: filter.createdTo?.getTime(),
      afterSeq,
      limit: top + 1,
    });
    const page = rows.slice(0, top);
    const more = rows.length > top;
    return {
      instances: page.map((r) => this.toStatus(r, false, true)),
      continuationToken: more
        ? Buffer.from(JSON.stringify({ after: page[page.length - 1].seq })).toString('base64url')
        : undefined,
    };
  }

  async raiseEvent(
    instanceId: string,
    eventName: string,
    data: unknown,
  ): Promise<'accepted' | 'not-found' | 'gone'> {
    this.assertOpen();
    if (typeof eventName !== 'string' || !eventName.trim())
      throw new PipelineError('DURABLE.BAD_REQUEST', 'event name must be a non-empty string');
    const input = toJsonText(data, `event '${eventName}' data`);
    const now = this.clock.now();
    const r = this.store.tx(() => {
      const row = this.store.getInstance(instanceId);
      if (!row) return 'not-found' as const;
      if (isTerminal(row.status)) return 'gone' as const;
      const ev: Record<string, unknown> = {
        EventType: HistoryEventType.EventRaised,
        EventId: -1,
        Timestamp: iso(now),
        Name: eventName,
      };
      if (input !== null) ev.Input = input;
      this.store.addInbox(instanceId, null, 'event', ev, now);
      return 'accepted' as const;
    });
    if (r === 'accepted') {
      this.log.info('event raised', { instanceId, event: eventName });
      this.kick(instanceId);
    }
    return r;
  }

  async terminate(instanceId: string, reason: string): Promise<'accepted' | 'not-found' | 'gone'> {
    this.assertOpen();
    const now = this.clock.now();
    const r = this.store.tx(() => {
      const row = this.store.getInstance(instanceId);
      if (!row) return 'not-found' as const;
      if (isTerminal(row.status)) return 'gone' as const;
      this.store.addInbox(instanceId, null, 'terminate', { reason: String(reason ?? '') }, now);
      return 'accepted' as const;
    });
    if (r === 'accepted') this.kick(instanceId);
    return r;
  }

  /** Deletes a finished instance and its history. Returns the number deleted (0 or 1). */
  purge(instanceId: string): number {
    this.assertOpen();
    return this.store.tx(() => {
      const row = this.store.getInstance(instanceId);
      if (!row) return 0;
      if (!isTerminal(row.status)) {
        throw new PipelineError(
          'DURABLE.INSTANCE_RUNNING',
          `instance '${instanceId}' is ${row.status}; only finished instances can be purged (terminate it first)`,
        );
      }
      return this.store.deleteInstance(instanceId);
    });
  }

  /** Purges the finished instances matching the filter (running ones are never purged). */
  purgeBy(filter: { runtimeStatus?: string[]; createdFrom?: Date; createdTo?: Date }): number {
    this.assertOpen();
    return this.store.tx(() => {
      let n = 0;
      let after: number | undefined;
      for (;;) {
        const rows = this.store.listInstances({
          statuses: filter.runtimeStatus,
          createdFrom: filter.createdFrom?.getTime(),
          createdTo: filter.createdTo?.getTime(),
          afterSeq: after,
          limit: 500,
        });
        if (rows.length === 0) break;
        for (const r of rows) if (isTerminal(r.status)) n += this.store.deleteInstance(r.instance_id);
        after = rows[rows.length - 1].seq;
      }
      return n;
    });
  }

  /** Resolves with the final status (Completed, Failed, Terminated); rejects after timeoutMs (real time). */
  async waitForCompletion(instanceId: string, timeoutMs = 60000): Promise<DurableStatus> {
    this.assertOpen();
    const first = this.getStatus(instanceId);
    if (!first) throw new PipelineError('DURABLE.NOT_FOUND', `no instance with id '${instanceId}'`);
    if (isTerminal(first.runtimeStatus)) return first;
    return new Promise<DurableStatus>((resolve, reject) => {
      const timer = setTimeout(() => {
        remove();
        const s = this.store.db.open ? this.getStatus(instanceId) : undefined;
        reject(
          new PipelineError(
            'DURABLE.WAIT_TIMEOUT',
            `instance '${instanceId}' did not finish within ${timeoutMs} ms (status ${s?.runtimeStatus ?? 'unknown'})`,
          ),
        );
      }, timeoutMs);
      timer.unref();
      const waiter = () => {
        clearTimeout(timer);
        remove();
        if (!this.store.db.open)
          return reject(new PipelineError('DURABLE.STOPPED', 'the durable engine stopped'));
        const s = this.getStatus(instanceId);
        if (!s) return reject(new PipelineError('DURABLE.NOT_FOUND', `instance '${instanceId}' was purged`));
        resolve(s);
      };
      const remove = () => {
        const ws = this.completionWaiters.get(instanceId) ?? [];
        const left = ws.filter((w) => w !== waiter);
        if (left.length) this.completionWaiters.set(instanceId, left);
        else this.completionWaiters.delete(instanceId);
      };
      const ws = this.completionWaiters.get(instanceId) ?? [];
      ws.push(waiter);
      this.completionWaiters.set(instanceId, ws);
    });
  }

  handleClientRequest(req: ClientRequest): Promise<ClientResponse> {
    return routeClientRequest(this, req);
  }

  clientData(rpcBaseUrl: string): Record<string, unknown> {
    return buildClientData(rpcBaseUrl, this.taskHubName);
  }

  // ------------------------------------------------------------------ internals: registry

  private assertOpen(): void {
    if (!this.store.db.open) throw new PipelineError('DURABLE.STOPPED', 'the durable engine is stopped');
  }

  private triggerBinding(fn: RegisteredFunction): { type: string; name: string } | undefined {
    for (const b of Object.values(fn.metadata.bindings ?? {})) {
      if (
        b &&
        (b.type === 'orchestrationTrigger' || b.type === 'activityTrigger' || b.type === 'entityTrigger')
      )
        return b as unknown as { type: string; name: string };
    }
    return undefined;
  }

  private findFunction(
    name: string,
    type: 'orchestrationTrigger' | 'activityTrigger',
  ): RegisteredFunction | undefined {
    const fns = this.opts.functions().filter((f) => this.triggerBinding(f)?.type === type);
    return (
      fns.find((f) => f.metadata.name === name) ??
      fns.find((f) => f.metadata.name.toLowerCase() === name.toLowerCase())
    );
  }

  private namesOf(type: string): string[] {
    return this.opts
      .functions()
      .filter((f) => this.triggerBinding(f)?.type === type)
      .map((f) => f.metadata.name)
      .sort();
  }

  private createInstanceRow(
    id: string,
    name: string,
    input: string | null,
    now: number,
    parent: { id: string; taskId: number; generation: number } | null,
  ): void {
    this.store.insertInstance({
      instance_id: id,
      name,
      generation: 0,
      status: RuntimeStatus.Pending,
      input,
      output: null,
      custom_status: null,
      failure: null,
      created_at: now,
      updated_at: now,
      last_ts: now,
      parent_instance_id: parent?.id ?? null,
      parent_task_id: parent?.taskId ?? null,
      parent_generation: parent?.generation ?? null,
      model: JSON.stringify(emptyModel()),
    });
    const ev: Record<string, unknown> = {
      EventType: HistoryEventType.ExecutionStarted,
      EventId: -1,
      Timestamp: iso(now),
      Name: name,
      Version: '',
    };
    if (input !== null) ev.Input = input;
    if (parent)
      ev.ParentInstance = { OrchestrationInstance: { InstanceId: parent.id }, TaskScheduleId: parent.taskId };
    this.store.addInbox(id, 0, 'start', ev, now);
  }

  private toStatus(row: InstanceRow, showHistory: boolean, showInput: boolean): DurableStatus {
    const s: DurableStatus = {
      name: row.name,
      instanceId: row.instance_id,
      createdTime: iso(row.created_at),
      lastUpdatedTime: iso(row.updated_at),
      input: showInput ? (parseJsonText(row.input) ?? null) : null,
      output: parseJsonText(row.output) ?? null,
      runtimeStatus: row.status,
      customStatus: parseJsonText(row.custom_status) ?? null,
    };
    if (showHistory) {
      s.history = this.store.history(row.instance_id).map((t) => {
        const e = JSON.parse(t) as HistoryEvent;
        const { IsPlayed: _p, ...rest } = e;
        return { ...rest, EventType: historyEventName(e.EventType) };
      });
    }
    return s;
  }

  // ------------------------------------------------------------------ internals: scheduling

  private kick(instanceId: string): void {
    if (this.stopped || !this.started) return;
    if (this.activeInstances.has(instanceId)) {
      this.again.add(instanceId);
      return;
    }
    this.activeInstances.add(instanceId);
    this.busy++;
    void this.instanceLoop(instanceId);
  }

  private async instanceLoop(instanceId: string): Promise<void> {
    try {
      for (;;) {
        if (this.stopped) break;
        let progressed = false;
        try {
          progressed = await this.episode(instanceId);
        } catch (e) {
          this.log.error('durable episode failed unexpectedly', {
            instanceId,
            error: e instanceof Error ? e.message : String(e),
          });
          this.failAfterEngineError(instanceId, e);
          progressed = false;
        }
        if (!progressed) {
          if (this.again.delete(instanceId)) continue;
          break;
        }
      }
    } finally {
      this.activeInstances.delete(instanceId);
      this.busy--;
      this.checkIdle();
    }
  }

  private failAfterEngineError(instanceId: string, e: unknown): void {
    if (!this.store.db.open) return;
    try {
      const row = this.store.getInstance(instanceId);
      if (!row || isTerminal(row.status)) return;
      const message = `[DURABLE.ENGINE_ERROR] the local durable engine failed while running '${row.name}': ${e instanceof Error ? e.message : String(e)}`;
      const now = this.clock.now();
      const done = this.store.tx(() =>
        this.finish(
          row,
          RuntimeStatus.Failed,
          JSON.stringify(`Orchestrator function '${row.name}' failed: ${message}`),
          { ErrorType: 'Error', ErrorMessage: message, IsNonRetriable: true },
          Math.max(now, row.last_ts),
          [],
        ),
      );
      this.afterFinish(done);
    } catch (e2) {
      this.log.error('durable engine could not record a failure', {
        instanceId,
        error: e2 instanceof Error ? e2.message : String(e2),
      });
    }
  }

  private armTimer(t: TimerRow): void {
    if (this.stopped) return;
    const cancel = this.clock.at(t.fire_at, () => this.fireTimer(t.id));
    this.armed.set(t.id, cancel);
  }

  private disarm(ids: number[]): void {
    for (const id of ids) {
      this.armed.get(id)?.();
      this.armed.delete(id);
    }
  }

  private fireTimer(timerRowId: number): void {
    this.armed.delete(timerRowId);
    if (this.stopped || !this.store.db.open) return;
    const now = this.clock.now();
    const instanceId = this.store.tx(() => {
      const t = this.store.getTimer(timerRowId);
      if (!t) return undefined;
      this.store.deleteTimer(t.id);
      const inst = this.store.getInstance(t.instance_id);
      if (!inst || inst.generation !== t.generation || isTerminal(inst.status)) return undefined;
      this.store.addInbox(
        t.instance_id,
        t.generation,
        'completion',
        {
          EventType: HistoryEventType.TimerFired,
          EventId: -1,
          Timestamp: iso(now),
          TimerId: t.task_id,
          FireAt: iso(t.fire_at),
        },
        now,
      );
      return t.instance_id;
    });
    if (instanceId) {
      if (this.verbose) this.log.debug('timer fired', { instanceId, timerId: timerRowId });
      this.kick(instanceId);
    }
  }

  private enqueueActivity(row: ActivityRow): void {
    if (this.stopped || this.actInFlight.has(row.id) || this.actQueue.some((r) => r.id === row.id)) return;
    this.actQueue.push(row);
    this.pumpActivities();
  }

  private pumpActivities(): void {
    while (!this.stopped && this.actInFlight.size < this.maxActivities && this.actQueue.length > 0) {
      const row = this.actQueue.shift() as ActivityRow;
      this.actInFlight.add(row.id);
      this.busy++;
      void this.runActivity(row).finally(() => {
        this.actInFlight.delete(row.id);
        this.busy--;
        this.pumpActivities();
        this.checkIdle();
      });
    }
  }

  private contextFor(
    fn: RegisteredFunction,
    instanceId: string,
    isOrchestrator: boolean,
    replaying: () => boolean,
  ): InvocationContext {
    const bindings = Object.values(fn.metadata.bindings ?? {});
    const trigger = this.triggerBinding(fn) ?? {
      type: isOrchestrator ? 'orchestrationTrigger' : 'activityTrigger',
      name: 'context',
    };
    const extraInputs = bindings.filter((b) => b !== (trigger as unknown) && b.direction === 'in');
    const extraOutputs = bindings.filter((b) => b.direction === 'out');
    const log = this.log;
    const verbose = this.verbose;
    const functionName = fn.metadata.name;
    const invocationId = randomUUID();
    return new InvocationContext({
      invocationId,
      functionName,
      options: {
        trigger: trigger as never,
        extraInputs: extraInputs as never,
        extraOutputs: extraOutputs as never,
      },
      logHandler: (level, ...args) => {
        if (isOrchestrator && replaying() && !verbose) return;
        const msg = args
          .map((a) => (typeof a === 'string' ? a : a instanceof Error ? a.message : safeStringify(a)))
          .join(' ');
        const fields = { instanceId, function: functionName, invocationId };
        if (level === 'error' || level === 'critical') log.error(msg, fields);
        else if (level === 'warning') log.warn(msg, fields);
        else if (level === 'debug' || level === 'trace') log.debug(msg, fields);
        else log.info(msg, fields);
      },
    });
  }

  private async runActivity(row: ActivityRow): Promise<void> {
    if (!this.store.db.open) return;
    const started = this.clock.now();
    const t0 = process.hrtime.bigint();
    let resultText: string | undefined;
    let failure: FailureDetailsPayload | undefined;
    let reason = '';
    if (row.immediate_failure) {
      const f = JSON.parse(row.immediate_failure) as { reason: string; details: FailureDetailsPayload };
      failure = f.details;
      reason = f.reason;
    } else {
      const fn = this.findFunction(row.name, 'activityTrigger');
      if (!fn) {
        const message = `[DURABLE.UNKNOWN_ACTIVITY] The function '${row.name}' doesn't exist, is disabled, or is not an activity function (registered activities: ${this.namesOf('activityTrigger').join(', ') || 'none'})`;
        failure = { ErrorType: 'Error', ErrorMessage: message, IsNonRetriable: true };
      } else {
        const ctx = this.contextFor(fn, row.instance_id, false, () => false);
        try {
          this.opts.prepareContext?.(ctx, fn);
          const input = row.input === null ? undefined : JSON.parse(row.input);
          const out = await fn.handler(input, ctx);
          try {
            resultText = JSON.stringify(out === undefined ? null : out);
          } catch (e) {
            failure = {
              ErrorType: 'Error',
              ErrorMessage: `[DURABLE.NOT_SERIALIZABLE] the result of activity '${row.name}' is not JSON-serializable: ${(e as Error).message}`,
              IsNonRetriable: true,
            };
          }
        } catch (e) {
          failure = failureFromThrown(e);
        }
      }
      reason = failure ? `Activity function '${row.name}' failed: ${failure.ErrorMessage}` : '';
    }
    const durationMs = Number((process.hrtime.bigint() - t0) / 1000000n);
    if (this.stopped && !this.store.db.open) return;
    if (!this.store.db.open) return;
    const now = Math.max(this.clock.now(), started);
    const delivered = this.store.tx(() => {
      if (this.store.deleteActivity(row.id) === 0) return false; // terminated or purged meanwhile
      const inst = this.store.getInstance(row.instance_id);
      if (!inst || inst.generation !== row.generation || isTerminal(inst.status)) return false;
      const ev: Record<string, unknown> = failure
        ? {
            EventType: HistoryEventType.TaskFailed,
            EventId: -1,
            Timestamp: iso(now),
            TaskScheduledId: row.task_id,
            Reason: reason,
            Details: failure.StackTrace ?? '',
            FailureDetails: failure,
          }
        : {
            EventType: HistoryEventType.TaskCompleted,
            EventId: -1,
            Timestamp: iso(now),
            TaskScheduledId: row.task_id,
            Result: resultText,
          };
      this.store.addInbox(row.instance_id, row.generation, 'completion', ev, now);
      return true;
    });
    const fields = { instanceId: row.instance_id, function: row.name, taskId: row.task_id, durationMs };
    if (failure) this.log.warn('activity failed', { ...fields, error: failure.ErrorMessage });
    else this.log.info('activity completed', fields);
    if (delivered) this.kick(row.instance_id);
  }

  // ------------------------------------------------------------------ internals: episodes

  /** Runs one episode for the instance (delivering at most one inbox item). Returns true if it consumed one. */
  private async episode(instanceId: string): Promise<boolean> {
    if (!this.store.db.open) return false;
    const inst = this.store.getInstance(instanceId);
    const rows = this.store.inbox(instanceId);
    if (rows.length === 0) return false;
    if (!inst) {
      this.store.deleteInboxOf(instanceId);
      return false;
    }
    if (isTerminal(inst.status)) {
      this.store.deleteInboxOf(instanceId);
      return false;
    }
    const term = rows.find((r) => r.kind === 'terminate');
    if (term) {
      this.terminateNow(inst, (JSON.parse(term.event) as { reason: string }).reason);
      return true;
    }
    const stored = this.store.history(instanceId);
    let row: InboxRow | undefined;
    if (stored.length === 0) {
      row = rows.find((r) => r.kind === 'start' && r.generation === inst.generation);
      const stale = rows.find((r) => r.generation !== null && r.generation !== inst.generation);
      if (stale) {
        this.store.deleteInbox(stale.id);
        return true;
      }
      if (!row) return false; // events wait for the start
    } else {
      row = rows[0];
    }
    if (row.generation !== null && row.generation !== inst.generation) {
      this.store.deleteInbox(row.id);
      return true;
    }

    const model = JSON.parse(inst.model) as Model;
    const ts = Math.max(this.clock.now(), inst.last_ts);
    const event = JSON.parse(row.event) as HistoryEvent;
    const ops: Op[] = [];
    const scheduledEvents: HistoryEvent[] = [];

    if (row.kind === 'completion') {
      const taskId = (
        event.EventType === HistoryEventType.TimerFired ? event.TimerId : event.TaskScheduledId
      ) as number;
      const ref = model.open[String(taskId)];
      if (!ref) {
        // a cancelled timer or a stale completion: nothing waits for it
        this.store.deleteInbox(row.id);
        return true;
      }
      delete model.open[String(taskId)];
      if (!model.returned) this.mirrorDynamicIds(model, ref, event, ts, ops, scheduledEvents, inst);
    }
    event.Timestamp = event.Timestamp ?? iso(ts);

    const fn = this.findFunction(inst.name, 'orchestrationTrigger');
    const orchestratorStarted: HistoryEvent = {
      EventType: HistoryEventType.OrchestratorStarted,
      EventId: -1,
      Timestamp: iso(ts),
    };
    const newEvents: HistoryEvent[] = [orchestratorStarted, event];

    if (!fn) {
      const message = `[DURABLE.UNKNOWN_ORCHESTRATOR] no orchestrator function named '${inst.name}' is registered (registered: ${this.namesOf('orchestrationTrigger').join(', ') || 'none'})`;
      const done = this.store.tx(() => {
        this.store.deleteInbox(row.id);
        this.store.appendHistory(instanceId, newEvents);
        return this.finish(
          inst,
          RuntimeStatus.Failed,
          JSON.stringify(`Orchestrator function '${inst.name}' failed: ${message}`),
          { ErrorType: 'Error', ErrorMessage: message, IsNonRetriable: true },
          ts,
          [],
        );
      });
      this.afterFinish(done);
      return true;
    }

    // ---- run the real orchestrator handler
    const history = [
      ...stored.map((t) => ({ ...(JSON.parse(t) as HistoryEvent), IsPlayed: true })),
      ...newEvents.map((e) => ({ ...JSON.parse(JSON.stringify(e)), IsPlayed: false })),
    ];
    const input = parseJsonText(inst.input);
    const holder: { ctx?: InvocationContext } = {};
    const ctx = this.contextFor(fn, instanceId, true, () =>
      Boolean((holder.ctx as unknown as { df?: { isReplaying?: boolean } } | undefined)?.df?.isReplaying),
    );
    holder.ctx = ctx;
    const trigger = {
      history,
      input,
      instanceId,
      isReplaying: stored.length > 0,
      parentInstanceId: inst.parent_instance_id ?? undefined,
      upperSchemaVersion: ENGINE_SCHEMA_VERSION,
      upperSchemaVersionNew: ENGINE_SCHEMA_VERSION,
      maximumShortTimerDuration: MAXIMUM_SHORT_TIMER_DURATION,
      longRunningTimerIntervalDuration: LONG_RUNNING_TIMER_INTERVAL_DURATION,
      defaultHttpAsyncRequestSleepTimeMillseconds: DEFAULT_HTTP_ASYNC_SLEEP_MS,
    };
    const t0 = process.hrtime.bigint();
    let state: OrchestratorStateLike | undefined;
    let failure: { message: string; details?: FailureDetailsPayload } | undefined;
    let customStatus: unknown;
    let hasCustomStatus = false;
    try {
      const r = (await fn.handler(trigger, ctx)) as OrchestratorStateLike | undefined;
      if (!r || typeof r !== 'object' || !Array.isArray(r.actions)) {
        failure = {
          message: `[DURABLE.BAD_ORCHESTRATOR_RESULT] '${inst.name}' did not return an orchestrator state; register orchestrators with df.app.orchestration(name, function* (context) {...})`,
        };
      } else {
        state = r;
        customStatus = r.customStatus;
        hasCustomStatus = true;
      }
    } catch (e) {
      const p = parseOrchestratorError(e);
      failure = { message: p.message, details: p.details };
      if (p.hasCustomStatus) {
        customStatus = p.customStatus;
        hasCustomStatus = true;
      }
    }
    const episodeMs = Number((process.hrtime.bigint() - t0) / 1000000n);

    let customText: string | null | undefined;
    if (hasCustomStatus) {
      try {
        customText = customStatus === undefined ? null : toJsonText(customStatus, 'custom status');
      } catch (e) {
        failure = failure ?? { message: (e as Error).message };
        customText = undefined;
      }
      if (customText && customText.length > MAX_CUSTOM_STATUS_CHARS) {
        failure = failure ?? {
          message: `[DURABLE.CUSTOM_STATUS_TOO_LARGE] custom status of '${inst.name}' is ${customText.length} characters of JSON; the limit is ${MAX_CUSTOM_STATUS_CHARS} (as in Azure). Keep custom status small (ids, step names) and put data in activity outputs.`,
        };
        customText = undefined;
      }
    }

    let continueInput: string | null | undefined;
    let completed = false;
    let output: string | null = null;
    let actionCount = 0;
    if (state && !failure) {
      const flat = flattenActions(state);
      actionCount = flat.length;
      const unsupported = flat.find((a) => UNSUPPORTED[a.actionType] !== undefined);
      if (unsupported) {
        failure = {
          message: `[DURABLE.UNSUPPORTED_ACTION] '${inst.name}' uses ${UNSUPPORTED[unsupported.actionType]}, which the local durable engine does not support (entities and durable HTTP are not available locally)`,
        };
      } else {
        const sigs = model.sigs ?? [];
        const diverged =
          flat.length < model.actionCount
            ? model.actionCount
            : sigs.findIndex((sig, i) => i < flat.length && actionSignature(flat[i]) !== sig);
        if (diverged >= 0) {
          const now = flat[diverged] ? actionSignature(flat[diverged]) : 'nothing';
          failure = {
            message: `[DURABLE.REPLAY_MISMATCH] non-deterministic orchestrator '${inst.name}': on replay, action #${diverged} is ${now} but it was ${sigs[diverged] ?? 'something else'} before. Orchestrators must yield the same tasks in the same order on every replay (no Date, Math.random, I/O or mutable globals).`,
          };
        }
      }
      if (!failure) {
        try {
          this.scheduleNewActions(model, flat, ts, inst, ops, scheduledEvents);
          model.sigs = flat.map(actionSignature);
        } catch (e) {
          failure = { message: (e as Error).message };
        }
      }
      if (!failure) {
        this.cancelTimers(model, flat, ops);
        const seq = (ctx as unknown as { df?: { taskOrchestratorExecutor?: { sequenceNumber?: unknown } } })
          .df?.taskOrchestratorExecutor?.sequenceNumber;
        if (!state.isDone && !model.returned && typeof seq === 'number' && seq !== model.nextId) {
          failure = {
            message: `[DURABLE.REPLAY_MISMATCH] the orchestrator numbered ${seq} tasks but the local engine expected ${model.nextId}; the orchestration would hang. Is '${inst.name}' deterministic (same yields in the same order on every replay)?`,
          };
        }
      }
      if (!failure && state.isDone) {
        const can = flat.find((a) => a.actionType === ActionType.ContinueAsNew);
        if (can) {
          try {
            continueInput = toJsonText(decodeProcessedInput(can.input), 'continueAsNew input');
          } catch (e) {
            failure = { message: (e as Error).message };
          }
        } else {
          try {
            output = toJsonText(state.output, 'orchestration output');
            completed = true;
          } catch (e) {
            failure = { message: (e as Error).message };
          }
        }
      }
    }

    if (this.verbose) {
      this.log.debug('orchestrator episode', {
        instanceId,
        function: inst.name,
        delivered: historyEventName(event.EventType),
        historyLength: history.length,
        actions: actionCount,
        newOps: ops.length,
        durationMs: episodeMs,
      });
    }

    // ---- commit
    if (!this.store.db.open) return false;
    const endEvents: HistoryEvent[] = [
      { EventType: HistoryEventType.OrchestratorCompleted, EventId: -1, Timestamp: iso(ts) },
    ];

    if (failure) {
      const message = failure.message;
      const details = failure.details ?? { ErrorType: 'Error', ErrorMessage: message, IsNonRetriable: false };
      const done = this.store.tx(() => {
        if (!this.stillCurrent(inst)) return undefined;
        this.store.deleteInbox(row.id);
        this.store.appendHistory(instanceId, [...newEvents, ...endEvents]);
        if (customText !== undefined) this.store.updateInstance(instanceId, { custom_status: customText });
        return this.finish(
          inst,
          RuntimeStatus.Failed,
          JSON.stringify(`Orchestrator function '${inst.name}' failed: ${message}`),
          details,
          ts,
          [],
        );
      });
      this.afterFinish(done);
      return true;
    }

    if (continueInput !== undefined) {
      const gen = inst.generation + 1;
      const now = this.clock.now();
      const cancelled = this.store.tx(() => {
        if (!this.stillCurrent(inst)) return [] as number[];
        this.store.deleteInbox(row.id);
        this.store.clearHistory(instanceId);
        this.store.deleteActivitiesOf(instanceId);
        const timerIds = this.store.deleteTimersOf(instanceId);
        this.store.updateInstance(instanceId, {
          generation: gen,
          status: RuntimeStatus.Running,
          input: continueInput ?? null,
          output: null,
          updated_at: Math.max(now, ts),
          last_ts: ts,
          model: JSON.stringify(emptyModel()),
          ...(customText !== undefined ? { custom_status: customText } : {}),
        });
        const ev: Record<string, unknown> = {
          EventType: HistoryEventType.ExecutionStarted,
          EventId: -1,
          Timestamp: iso(ts),
          Name: inst.name,
          Version: '',
        };
        if (continueInput !== null) ev.Input = continueInput;
        this.store.addInbox(instanceId, gen, 'start', ev, now);
        return timerIds;
      });
      this.disarm(cancelled);
      this.log.info('orchestration continued as new', { instanceId, function: inst.name });
      return true;
    }

    // running, or completed (maybe waiting for uncancelled timers)
    let finalStatus: string | undefined;
    if (completed || model.returned) {
      const pendingTimers = Object.values(model.open).filter((r) => model.groups[r.g]?.kind === 'timer');
      if (pendingTimers.length > 0) {
        if (!model.returned) {
          this.log.warn(
            'orchestration returned with uncancelled timers; like Azure it stays Running until they fire. Cancel the timer that lost a Task.any race (timer.cancel()).',
            { instanceId, function: inst.name, pendingTimers: pendingTimers.length },
          );
        }
        if (completed && !model.returned) model.returnedOutput = output;
        model.returned = true;
      } else {
        finalStatus = RuntimeStatus.Completed;
        if (model.returned && !completed) output = model.returnedOutput ?? null;
      }
    }

    const armed: TimerRow[] = [];
    const activities: ActivityRow[] = [];
    const kicks: string[] = [];
    const cancelledRowIds: number[] = [];
    const result = this.store.tx(() => {
      if (!this.stillCurrent(inst)) return undefined;
      this.store.deleteInbox(row.id);
      this.store.appendHistory(instanceId, [...newEvents, ...scheduledEvents, ...endEvents]);
      const now = this.clock.now();
      for (const op of ops) {
        if (op.kind === 'activity') {
          const a = {
            instance_id: instanceId,
            generation: inst.generation,
            task_id: op.taskId,
            name: op.name,
            input: op.input,
            immediate_failure: op.immediateFailure ? JSON.stringify(op.immediateFailure) : null,
            created_at: now,
          };
          activities.push({ id: this.store.addActivity(a), ...a });
        } else if (op.kind === 'timer') {
          const t = {
            instance_id: instanceId,
            generation: inst.generation,
            task_id: op.taskId,
            fire_at: op.fireAt,
          };
          armed.push({ id: this.store.addTimer(t), ...t });
        } else if (op.kind === 'cancelTimer') {
          cancelledRowIds.push(...this.store.deleteTimerByTask(instanceId, inst.generation, op.taskId));
        } else if (op.kind === 'sub') {
          const k = this.createChild(inst, op, now);
          if (k) kicks.push(k);
        }
      }
      this.store.updateInstance(instanceId, {
        status: RuntimeStatus.Running,
        updated_at: Math.max(now, ts),
        last_ts: ts,
        model: JSON.stringify(model),
        ...(customText !== undefined ? { custom_status: customText } : {}),
      });
      if (finalStatus)
        return this.finish(
          { ...inst, status: RuntimeStatus.Running },
          finalStatus,
          output,
          undefined,
          ts,
          [],
        );
      return {
        instanceId,
        parentKick: undefined as string | undefined,
        removedTimers: [] as number[],
        status: RuntimeStatus.Running,
        name: inst.name,
        createdAt: inst.created_at,
      };
    });
    if (!result) return true;
    if (inst.status === RuntimeStatus.Pending)
      this.log.info('orchestration started', { instanceId, function: inst.name });
    this.disarm(cancelledRowIds);
    for (const t of armed) this.armTimer(t);
    for (const a of activities) this.enqueueActivity(a);
    for (const k of kicks) this.kick(k);
    if (finalStatus) this.afterFinish(result);
    return true;
  }

  private stillCurrent(inst: InstanceRow): boolean {
    const cur = this.store.getInstance(inst.instance_id);
    return Boolean(cur && cur.generation === inst.generation && !isTerminal(cur.status));
  }

  /** The library allocates ids itself while processing some completions; mirror it. */
  private mirrorDynamicIds(
    model: Model,
    ref: TaskRef,
    event: HistoryEvent,
    ts: number,
    ops: Op[],
    scheduled: HistoryEvent[],
    inst: InstanceRow,
  ): void {
    const g = model.groups[ref.g];
    if (!g || g.canceled) return;
    const failed =
      event.EventType === HistoryEventType.TaskFailed ||
      event.EventType === HistoryEventType.SubOrchestrationInstanceFailed;
    if (g.retry) {
      const r = g.retry;
      if (ref.role === 'attempt') {
        if (!failed) return;
        r.lastFailure = (event.FailureDetails as FailureDetailsPayload | undefined) ?? {
          ErrorType: 'Error',
          ErrorMessage: String(event.Reason ?? 'failed'),
          IsNonRetriable: false,
        };
        r.lastReason = typeof event.Reason === 'string' ? event.Reason : r.lastFailure.ErrorMessage;
        const attemptsMade = r.attemptNumber;
        r.attemptNumber++;
        const id = model.nextId++;
        model.open[String(id)] = { g: ref.g, role: 'retryTimer' };
        const fireAt = ts + this.retryDelay(r, attemptsMade, ts);
        ops.push({ kind: 'timer', taskId: id, fireAt });
        scheduled.push({
          EventType: HistoryEventType.TimerCreated,
          EventId: id,
          Timestamp: iso(ts),
          FireAt: iso(fireAt),
        });
      } else if (ref.role === 'retryTimer') {
        if (r.attemptNumber > r.max) return; // the library now fails the task with the last error
        const id = model.nextId++;
        model.open[String(id)] = { g: ref.g, role: 'attempt' };
        const expired = r.timeout > 0 && ts >= r.firstAttemptAt + r.timeout;
        const immediateFailure =
          expired && r.lastFailure
            ? {
                reason: `${r.lastReason ?? r.lastFailure.ErrorMessage} (retry timeout of ${r.timeout} ms expired)`,
                details: r.lastFailure,
              }
            : undefined;
        this.scheduleAttempt(g, id, ts, ops, scheduled, inst, immediateFailure);
      }
      return;
    }
    if (g.kind === 'timer' && g.long && ref.role === 'timer' && g.fireAt !== undefined && g.fireAt > ts) {
      const id = model.nextId++;
      model.open[String(id)] = { g: ref.g, role: 'timer' };
      const next = g.fireAt - ts > MAXIMUM_SHORT_TIMER_MS ? ts + LONG_RUNNING_TIMER_INTERVAL_MS : g.fireAt;
      ops.push({ kind: 'timer', taskId: id, fireAt: next });
      scheduled.push({
        EventType: HistoryEventType.TimerCreated,
        EventId: id,
        Timestamp: iso(ts),
        FireAt: iso(next),
      });
    }
  }

  /** delay after attempt k (1-based) = first × backoff^(k−1), capped; 0 after the last attempt or past the retry timeout. */
  private retryDelay(r: RetryState, attemptsMade: number, ts: number): number {
    if (attemptsMade >= r.max) return 0;
    if (r.timeout > 0 && ts >= r.firstAttemptAt + r.timeout) return 0;
    let d = r.first * Math.pow(r.backoff, attemptsMade - 1);
    if (r.maxInterval > 0) d = Math.min(d, r.maxInterval);
    if (!Number.isFinite(d) || d < 0) d = r.maxInterval > 0 ? r.maxInterval : r.first;
    return Math.round(d);
  }

  private scheduleAttempt(
    g: Group,
    id: number,
    ts: number,
    ops: Op[],
    scheduled: HistoryEvent[],
    inst: InstanceRow,
    immediateFailure?: { reason: string; details: FailureDetailsPayload },
  ): void {
    if (g.kind === 'activity') {
      ops.push({
        kind: 'activity',
        taskId: id,
        name: g.name as string,
        input: g.input ?? null,
        immediateFailure,
      });
      const ev: HistoryEvent = {
        EventType: HistoryEventType.TaskScheduled,
        EventId: id,
        Timestamp: iso(ts),
        Name: g.name,
      };
      if (g.input !== null && g.input !== undefined) ev.Input = g.input;
      scheduled.push(ev);
    } else {
      const childId = g.childId ?? `${inst.instance_id}:${id}`;
      ops.push({
        kind: 'sub',
        taskId: id,
        name: g.name as string,
        input: g.input ?? null,
        childId,
        immediateFailure,
      });
      const ev: HistoryEvent = {
        EventType: HistoryEventType.SubOrchestrationInstanceCreated,
        EventId: id,
        Timestamp: iso(ts),
        Name: g.name,
        InstanceId: childId,
      };
      if (g.input !== null && g.input !== undefined) ev.Input = g.input;
      scheduled.push(ev);
    }
  }

  private scheduleNewActions(
    model: Model,
    flat: ActionLike[],
    ts: number,
    inst: InstanceRow,
    ops: Op[],
    scheduled: HistoryEvent[],
  ): void {
    for (let i = model.actionCount; i < flat.length; i++) {
      const a = flat[i];
      switch (a.actionType) {
        case ActionType.CallActivity:
        case ActionType.CallActivityWithRetry:
        case ActionType.CallSubOrchestrator:
        case ActionType.CallSubOrchestratorWithRetry: {
          const isSub =
            a.actionType === ActionType.CallSubOrchestrator ||
            a.actionType === ActionType.CallSubOrchestratorWithRetry;
          const name = String(a.functionName);
          const rawInput = isSub ? a.input : decodeProcessedInput(a.input);
          const g: Group = {
            kind: isSub ? 'sub' : 'activity',
            actionIndex: i,
            name,
            input: toJsonText(rawInput, `input of '${name}'`),
          };
          if (isSub && typeof a.instanceId === 'string' && a.instanceId) g.childId = a.instanceId;
          if (
            a.actionType === ActionType.CallActivityWithRetry ||
            a.actionType === ActionType.CallSubOrchestratorWithRetry
          ) {
            const ro = (a.retryOptions ?? {}) as Record<string, unknown>;
            const num = (v: unknown, d: number) => (typeof v === 'number' && Number.isFinite(v) ? v : d);
            g.retry = {
              first: num(ro.firstRetryIntervalInMilliseconds, 1000),
              max: num(ro.maxNumberOfAttempts, 1),
              backoff: num(ro.backoffCoefficient, 1),
              maxInterval: num(ro.maxRetryIntervalInMilliseconds, 0),
              timeout: num(ro.retryTimeoutInMilliseconds, 0),
              attemptNumber: 1,
              firstAttemptAt: ts,
            };
          }
          model.groups.push(g);
          const id = model.nextId++;
          model.open[String(id)] = { g: model.groups.length - 1, role: 'attempt' };
          this.scheduleAttempt(g, id, ts, ops, scheduled, inst);
          break;
        }
        case ActionType.CreateTimer: {
          const fireAt = new Date(a.fireAt as string | Date).getTime();
          if (Number.isNaN(fireAt))
            throw new Error(`[DURABLE.BAD_TIMER] '${inst.name}' created a timer without a valid fireAt`);
          const long = fireAt - ts > MAXIMUM_SHORT_TIMER_MS;
          const g: Group = { kind: 'timer', actionIndex: i, fireAt, long, canceled: a.isCanceled === true };
          model.groups.push(g);
          const id = model.nextId++;
          if (g.canceled) break; // created and cancelled in the same episode
          model.open[String(id)] = { g: model.groups.length - 1, role: 'timer' };
          const first = long ? ts + LONG_RUNNING_TIMER_INTERVAL_MS : fireAt;
          ops.push({ kind: 'timer', taskId: id, fireAt: first });
          scheduled.push({
            EventType: HistoryEventType.TimerCreated,
            EventId: id,
            Timestamp: iso(ts),
            FireAt: iso(first),
          });
          break;
        }
        case ActionType.WaitForExternalEvent:
        case ActionType.ContinueAsNew:
          break;
        default:
          throw new Error(
            `[DURABLE.UNSUPPORTED_ACTION] '${inst.name}' returned an action of unknown type ${a.actionType}`,
          );
      }
    }
    model.actionCount = Math.max(model.actionCount, flat.length);
  }

  private cancelTimers(model: Model, flat: ActionLike[], ops: Op[]): void {
    model.groups.forEach((g, gi) => {
      if (g.kind !== 'timer' || g.canceled) return;
      const a = flat[g.actionIndex];
      if (!a || a.actionType !== ActionType.CreateTimer || a.isCanceled !== true) return;
      g.canceled = true;
      for (const [id, ref] of Object.entries(model.open)) {
        if (ref.g === gi) {
          delete model.open[id];
          ops.push({ kind: 'cancelTimer', taskId: Number(id) });
        }
      }
    });
  }

  /** Inside a transaction: creates the child instance of a sub-orchestration (or reports its failure). */
  private createChild(
    parent: InstanceRow,
    op: Extract<Op, { kind: 'sub' }>,
    now: number,
  ): string | undefined {
    const fail = (reason: string, details: FailureDetailsPayload) => {
      this.store.addInbox(
        parent.instance_id,
        parent.generation,
        'completion',
        {
          EventType: HistoryEventType.SubOrchestrationInstanceFailed,
          EventId: -1,
          Timestamp: iso(now),
          TaskScheduledId: op.taskId,
          Reason: reason,
          Details: details.StackTrace ?? '',
          FailureDetails: details,
        },
        now,
      );
      return parent.instance_id;
    };
    if (op.immediateFailure) return fail(op.immediateFailure.reason, op.immediateFailure.details);
    const fn = this.findFunction(op.name, 'orchestrationTrigger');
    if (!fn) {
      const m = `[DURABLE.UNKNOWN_ORCHESTRATOR] no orchestrator function named '${op.name}' is registered (registered: ${this.namesOf('orchestrationTrigger').join(', ') || 'none'})`;
      return fail(m, { ErrorType: 'Error', ErrorMessage: m, IsNonRetriable: true });
    }
    const existing = this.store.getInstance(op.childId);
    if (existing && !isTerminal(existing.status)) {
      const m = `[DURABLE.INSTANCE_EXISTS] sub-orchestration instance '${op.childId}' already exists and is ${existing.status}`;
      return fail(m, { ErrorType: 'Error', ErrorMessage: m, IsNonRetriable: true });
    }
    if (existing) this.store.deleteInstance(op.childId);
    this.createInstanceRow(op.childId, fn.metadata.name, op.input, now, {
      id: parent.instance_id,
      taskId: op.taskId,
      generation: parent.generation,
    });
    return op.childId;
  }

  /** Inside a transaction: records a terminal status, drops pending work, notifies the parent. */
  private finish(
    inst: InstanceRow,
    status: string,
    output: string | null,
    failure: FailureDetailsPayload | undefined,
    ts: number,
    extraHistory: HistoryEvent[],
  ): FinishResult {
    const now = Math.max(this.clock.now(), ts);
    const hist: HistoryEvent[] = [...extraHistory];
    if (status === RuntimeStatus.Completed)
      hist.push({
        EventType: HistoryEventType.ExecutionCompleted,
        EventId: -1,
        Timestamp: iso(ts),
        OrchestrationStatus: status,
        Result: output ?? undefined,
      });
    else if (status === RuntimeStatus.Failed)
      hist.push({
        EventType: HistoryEventType.ExecutionFailed,
        EventId: -1,
        Timestamp: iso(ts),
        OrchestrationStatus: status,
        FailureDetails: failure,
      });
    this.store.appendHistory(inst.instance_id, hist);
    this.store.updateInstance(inst.instance_id, {
      status,
      output,
      failure: failure ? JSON.stringify(failure) : null,
      updated_at: now,
      last_ts: ts,
    });
    this.store.deleteActivitiesOf(inst.instance_id);
    const removedTimers = this.store.deleteTimersOf(inst.instance_id);
    this.store.deleteInboxOf(inst.instance_id, ['completion', 'event', 'start']);
    let parentKick: string | undefined;
    if (inst.parent_instance_id && inst.parent_task_id !== null) {
      const parent = this.store.getInstance(inst.parent_instance_id);
      if (parent && parent.generation === inst.parent_generation && !isTerminal(parent.status)) {
        if (status === RuntimeStatus.Completed) {
          this.store.addInbox(
            parent.instance_id,
            parent.generation,
            'completion',
            {
              EventType: HistoryEventType.SubOrchestrationInstanceCompleted,
              EventId: -1,
              Timestamp: iso(now),
              TaskScheduledId: inst.parent_task_id,
              Result: output ?? 'null',
            },
            now,
          );
        } else {
          const msg =
            status === RuntimeStatus.Terminated
              ? `Orchestrator function '${inst.name}' was terminated: ${parseJsonText(output) ?? ''}`
              : ((parseJsonText(output) as string) ?? `Orchestrator function '${inst.name}' failed`);
          const details: FailureDetailsPayload = {
            ErrorType: failure?.ErrorType ?? 'Error',
            ErrorMessage: msg,
            IsNonRetriable: false,
            InnerFailure: failure,
          };
          this.store.addInbox(
            parent.instance_id,
            parent.generation,
            'completion',
            {
              EventType: HistoryEventType.SubOrchestrationInstanceFailed,
              EventId: -1,
              Timestamp: iso(now),
              TaskScheduledId: inst.parent_task_id,
              Reason: msg,
              Details: '',
              FailureDetails: details,
            },
            now,
          );
        }
        parentKick = parent.instance_id;
      }
    }
    return {
      instanceId: inst.instance_id,
      parentKick,
      removedTimers,
      status,
      name: inst.name,
      createdAt: inst.created_at,
    };
  }

  private afterFinish(r: FinishResult | undefined): void {
    if (!r) return;
    this.disarm(r.removedTimers);
    const level = r.status === RuntimeStatus.Completed ? 'info' : 'warn';
    this.log[level](`orchestration ${r.status.toLowerCase()}`, {
      instanceId: r.instanceId,
      function: r.name,
      status: r.status,
      durationMs: Math.max(0, this.clock.now() - r.createdAt),
    });
    if (r.parentKick) this.kick(r.parentKick);
    const ws = this.completionWaiters.get(r.instanceId);
    if (ws) for (const w of [...ws]) w();
  }

  private terminateNow(inst: InstanceRow, reason: string): void {
    const ts = Math.max(this.clock.now(), inst.last_ts);
    const done = this.store.tx(() => {
      this.store.deleteInboxOf(inst.instance_id, ['terminate']);
      return this.finish(inst, RuntimeStatus.Terminated, JSON.stringify(reason), undefined, ts, [
        {
          EventType: HistoryEventType.ExecutionTerminated,
          EventId: -1,
          Timestamp: iso(ts),
          Input: JSON.stringify(reason),
        },
      ]);
    });
    this.afterFinish(done);
  }
}

interface FinishResult {
  instanceId: string;
  parentKick: string | undefined;
  removedTimers: number[];
  status: string;
  name: string;
  createdAt: number;
}
