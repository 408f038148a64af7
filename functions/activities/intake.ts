/**
 * The intake, wired: the webhook handling service (verify → dedupe → classify → coverage gate →
 * deploy-uat message), the gate's time-out activity, and the lane's recording activity.
 * Built by `createIntake(ports)` so tests wire real Azurite + a fake GitHub server and production wires
 * Azure. The trigger files (functions/githubWebhook.ts, deliveries.ts, deployQueueTrigger.ts) only
 * parse, call and map the result.
 */
import * as df from 'durable-functions';
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import valid from 'semver/functions/valid';
import { loadConfig, type Config } from '../../shared/config';
import { createGitHub, githubOptionsFromConfig, type GitHubPort } from '../../shared/adapters/github';
import { createLedger, ledgerContainer, type Ledger } from '../../shared/adapters/ledger';
import { createDeployQueueSender } from '../../shared/adapters/deploy-queue';
import {
  createDeliveriesStore,
  type CommitGateState,
  type DecisionInput,
  type DeliveriesStore,
  type DeliveryAnswer,
} from '../../shared/adapters/deliveries';
import {
  decideGate,
  deployMessageId,
  readCoverage,
  type GateDecision,
  type GatePolicy,
} from '../../shared/domain/coverage-gate';
import {
  checkDeclaredLength,
  classifyEvent,
  isRejection,
  MAX_WEBHOOK_BYTES,
  tooLarge,
  verifyRequest,
  type IntakeSettings,
  type MergeEvent,
} from '../../shared/domain/webhook';
import { errorCode, messageOf } from '../../shared/domain/errors';
import { createLogger, type Logger, type LogLevel } from '../../shared/log';

export const UAT = 'uat';

/** The `deploy-uat` queue message (Service Bus body). */
export interface DeployRequest {
  type: 'deploy-uat';
  environment: string;
  repository: string;
  version: string;
  sha: string;
  imageRef: string;
  coverage: number;
  mergedBy: string;
  trigger: 'push' | 'workflow_run';
  deliveryId: string;
  requestedAt: string;
}

export interface QueueSender {
  send(msg: { body: unknown; messageId: string; sessionId: string }): Promise<void>;
  close?(): Promise<void>;
}

export interface IntakePorts {
  secrets: Array<string | undefined>;
  settings: IntakeSettings;
  policy: GatePolicy;
  gateContext: string;
  imageRepository: string;
  /** registry host prefix of image references, e.g. `myacr.azurecr.io` (may be empty) */
  registryHost: string;
  github?: GitHubPort;
  ledger: Ledger;
  store: DeliveriesStore;
  queue: QueueSender;
  /** start the durable timer that gives up on a missing coverage status (idempotent per commit) */
  scheduleTimeout(input: { sha: string; deadline: string }, ctx?: InvocationContext): Promise<void>;
  log: Logger;
  now?: () => number;
  /** how long a concurrent duplicate waits for the first copy's answer */
  duplicateWaitMs?: number;
}

export function intakeSettings(config: Config): IntakeSettings {
  return {
    repository: config.GITHUB_REPOSITORY,
    defaultBranch: config.GITHUB_DEFAULT_BRANCH ?? 'main',
    triggerEvent: config.GITHUB_TRIGGER_EVENT ?? 'workflow_run',
    imageWorkflow: config.GITHUB_IMAGE_WORKFLOW ?? 'build-image',
    imageWorkflowPath: config.GITHUB_IMAGE_WORKFLOW_PATH ?? '.github/workflows/build-image.yml',
    coverageContext: config.COVERAGE_CONTEXT ?? 'coverage',
    coverageLogin: config.COVERAGE_SOURCE_LOGIN ?? 'github-actions[bot]',
    coverageAppId: config.COVERAGE_SOURCE_APP_ID,
  };
}

export function gatePolicy(config: Config): GatePolicy {
  return {
    min: config.COVERAGE_MIN ?? 80,
    tolerance: config.COVERAGE_TOLERANCE ?? 0,
    waitMinutes: config.COVERAGE_WAIT_MINUTES ?? 30,
  };
}

function registryHost(config: Config): string {
  if (!config.REGISTRY_URL) return '';
  try {
    return new URL(config.REGISTRY_URL).host;
  } catch {
    return '';
  }
}

type ResponseBody = Record<string, unknown>;
const json = (
  status: number,
  body: ResponseBody,
  headers: Record<string, string> = {},
): HttpResponseInit => ({
  status,
  jsonBody: body,
  headers: { 'cache-control': 'no-store', ...headers },
});

/**
 * Read the body as bytes, refusing once it exceeds the cap, without ever holding more than the cap:
 * the declared Content-Length was checked before (handle), and the body is streamed and given up
 * at the cap (a sender that declares less than it sends, or sends chunked, is cut off there too).
 */
export async function readCapped(
  req: HttpRequest,
  cap = MAX_WEBHOOK_BYTES,
): Promise<Uint8Array | 'too-large'> {
  const stream = req.body;
  if (!stream) return new Uint8Array(0);
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const chunk = value instanceof Uint8Array ? value : new Uint8Array(value as ArrayBuffer);
    total += chunk.byteLength;
    if (total > cap) {
      await reader.cancel().catch(() => undefined);
      return 'too-large';
    }
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
}

/**
 * A child logger without building one per request: each call goes to the parent with the child's
 * fields merged in (the same line a child would write). Most deliveries log one line, often filtered
 * by the level, and building two child loggers per request showed in the profile.
 */
function lazyChild(parent: Logger, fields: () => Record<string, unknown>): Logger {
  let merged: Record<string, unknown> | undefined;
  const f = () => (merged ??= fields());
  // a line the level filters out costs nothing: no fields merged
  const at = (level: LogLevel) => (m: string, x?: Record<string, unknown>) => {
    if (parent.enabled?.(level) !== false) parent[level](m, { ...f(), ...x });
  };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more) => lazyChild(parent, () => ({ ...f(), ...more })),
    enabled: (level) => parent.enabled?.(level) !== false,
  };
}

export interface Intake {
  handle(req: HttpRequest, ctx?: InvocationContext): Promise<HttpResponseInit>;
  /** durable timer fired: block a commit whose coverage never came (unless decided meanwhile) */
  gateTimeout(input: { sha: string }): Promise<{ decision: string; reason: string }>;
  list(limit: number): Promise<unknown[]>;
  /** write the decision records handed over so far (shutdown, tests) */
  flush(): Promise<void>;
  /** stop the background writes of decision records (nothing is retried after this) */
  close(): void;
}

/** event keys kept per commit (re-runs of one build; bounded) */
const MAX_EVENT_KEYS = 50;

const notConfigured = () =>
  Object.assign(
    new Error('[GITHUB.NOT_CONFIGURED] GITHUB_TOKEN or a GitHub App is required to read coverage'),
    { code: 'GITHUB.NOT_CONFIGURED' },
  );

export function createIntake(p: IntakePorts): Intake {
  const now = p.now ?? Date.now;
  const iso = () => new Date(now()).toISOString();

  /**
   * Log and store a decision. `wait: false` for decisions whose answer depends on nothing stored
   * (ignored events): the record is handed to the store's next group write and the answer does not
   * wait for Blob storage.
   */
  async function record(rec: DecisionInput, log: Logger, wait = true): Promise<void> {
    log.info(`intake ${rec.decision}: ${rec.reason}`, { ...rec, decision: rec.decision });
    try {
      await p.store.record(rec, wait ? undefined : { wait: false });
    } catch (err) {
      log.error('could not record the intake decision', { error: messageOf(err), code: errorCode(err) });
    }
  }

  async function postStatus(
    sha: string,
    state: 'success' | 'failure' | 'pending' | 'error',
    description: string,
    log: Logger,
  ): Promise<void> {
    if (!p.github) return;
    try {
      await p.github.createStatus(sha, { state, context: p.gateContext, description });
    } catch (err) {
      log.warn('could not post the gate commit status', { sha, error: messageOf(err), code: errorCode(err) });
    }
  }

  /**
   * Evaluate the gate for a commit in state `waiting` and act once: the transition out of `waiting` is
   * an If-Match write, so only one evaluator (concurrent events for the same commit) acts on it.
   */
  async function evaluate(
    cur: { value: CommitGateState; etag: string },
    log: Logger,
    deliveryId: string,
    fresh: boolean,
    ctx?: InvocationContext,
    deadlinePassed = false,
  ): Promise<DeliveryAnswer> {
    const st = cur.value;
    if (!p.github) throw notConfigured();
    const ctxName = p.settings.coverageContext;
    // the status history (with who posted each), not the combined status: only the CI source counts
    const [statuses, runs, uat] = await Promise.all([
      p.github.statusHistory(st.sha),
      p.github.checkRuns(st.sha, ctxName),
      p.ledger.current(UAT),
    ]);
    const reading = readCoverage(statuses, runs, {
      context: ctxName,
      login: p.settings.coverageLogin,
      appId: p.settings.coverageAppId,
    });
    // the durable timer firing is what says the deadline passed (its clock, not ours, is authoritative)
    const waitedMinutes = Math.max(
      (now() - Date.parse(st.firstSeenAt)) / 60000,
      deadlinePassed ? p.policy.waitMinutes : 0,
    );
    let decision: GateDecision = decideGate({
      reading,
      policy: p.policy,
      uatCoverage: typeof uat?.coverage === 'number' ? uat.coverage : undefined,
      waitedMinutes,
    });
    const base = { deliveryId, sha: st.sha };

    if (decision.outcome === 'wait') {
      if (fresh) {
        await p.scheduleTimeout({ sha: st.sha, deadline: st.deadline }, ctx);
        await postStatus(
          st.sha,
          'pending',
          `waiting for coverage (gives up ${st.deadline.slice(11, 16)} UTC)`,
          log,
        );
      }
      await record({ ...base, decision: 'waiting', reason: decision.description, status: 202 }, log);
      return { status: 202, body: { decision: 'waiting', reason: decision.description, sha: st.sha } };
    }

    let version: string | undefined;
    if (decision.outcome === 'pass') {
      const raw = await p.github.fileAt('VERSION', st.sha);
      version = raw === undefined ? undefined : (valid(raw.trim().replace(/^v/, '')) ?? undefined);
      if (!version)
        decision = {
          outcome: 'block',
          coverage: decision.coverage,
          description: `no valid VERSION file at ${st.sha.slice(0, 7)}`,
        };
    }

    const messageId = deployMessageId(UAT, st.sha);
    const next: CommitGateState = {
      ...st,
      state: decision.outcome === 'pass' ? 'passed' : 'blocked',
      reason: decision.description,
      ...(decision.outcome === 'pass' ? { messageId } : {}),
    };
    if (!(await p.store.putCommit(next, cur.etag))) {
      // another event for this commit decided first: report its decision, act on nothing
      const now2 = await p.store.commit(st.sha);
      const reason = `decided concurrently: ${now2?.value.state ?? 'unknown'}${now2?.value.reason ? ` (${now2.value.reason})` : ''}`;
      await record({ ...base, decision: 'ignored', reason, status: 200 }, log);
      return { status: 200, body: { decision: 'ignored', reason, sha: st.sha } };
    }

    if (decision.outcome === 'block') {
      await postStatus(st.sha, 'failure', decision.description, log);
      await record(
        {
          ...base,
          decision: 'blocked',
          reason: decision.description,
          status: 202,
          coverage: decision.coverage,
        },
        log,
      );
      return { status: 202, body: { decision: 'blocked', reason: decision.description, sha: st.sha } };
    }

    const request: DeployRequest = {
      type: 'deploy-uat',
      environment: UAT,
      repository: p.settings.repository ?? '',
      version: version!,
      sha: st.sha,
      imageRef: `${p.registryHost ? p.registryHost + '/' : ''}${p.imageRepository}:uat-v${version}`,
      coverage: decision.coverage,
      mergedBy: st.mergedBy,
      trigger: st.trigger,
      deliveryId: st.deliveryId,
      requestedAt: iso(),
    };
    try {
      await p.queue.send({ body: request, messageId, sessionId: UAT });
    } catch (err) {
      // put the commit back to waiting (the next delivery or status event retries); the message id is
      // stable, so a send that did reach the queue is dropped as a duplicate on the retry
      const back = await p.store.commit(st.sha);
      if (back)
        await p.store
          .putCommit({ ...back.value, state: 'waiting', messageId: undefined }, back.etag)
          .catch(() => false);
      throw err;
    }
    await postStatus(st.sha, 'pending', `${decision.description}; deploy of ${version} to UAT queued`, log);
    await record(
      {
        ...base,
        decision: 'accepted',
        reason: decision.description,
        status: 202,
        version,
        messageId,
        coverage: decision.coverage,
        mergedBy: st.mergedBy,
      },
      log,
    );
    return {
      status: 202,
      body: {
        decision: 'accepted',
        reason: decision.description,
        sha: st.sha,
        version,
        messageId,
        coverage: decision.coverage,
      },
    };
  }

  /** event keys a commit has seen (records written before keys existed: a push is keyed by its sha) */
  const seenEvents = (st: CommitGateState): string[] =>
    st.events ?? (st.trigger === 'push' ? [`push:${st.sha}`] : []);
  const withEvent = (events: string[], key: string) =>
    events.includes(key) ? events : [...events, key].slice(-MAX_EVENT_KEYS);

  async function onMerge(
    ev: MergeEvent,
    deliveryId: string,
    log: Logger,
    ctx?: InvocationContext,
  ): Promise<DeliveryAnswer> {
    const ignore = async (
      reason: string,
      decision: 'ignored' | 'replay' = 'ignored',
    ): Promise<DeliveryAnswer> => {
      await record(
        { deliveryId, event: ev.trigger, sha: ev.sha, decision, reason, status: 200, eventKey: ev.eventKey },
        log,
      );
      return { status: 200, body: { decision, reason, sha: ev.sha } };
    };
    if (ev.trigger === 'workflow_run') {
      // head_branch is only a name (a tag can be called `main`): ask GitHub whether the branch holds the commit
      if (!p.github) throw notConfigured();
      if (!(await p.github.isOnBranch(ev.sha, ev.branch)))
        return ignore(`commit ${ev.sha.slice(0, 7)} is not on the default branch ${ev.branch}`);
    }
    const existing = await p.store.commit(ev.sha);
    if (existing?.value.state === 'waiting') {
      // waiting (e.g. a first attempt failed on a GitHub outage): a redelivery or a second merge event
      // re-runs the gate; the event is remembered first, so that once blocked its replay opens nothing
      let cur: { value: CommitGateState; etag: string } | undefined = existing;
      for (
        let i = 0;
        i < 5 && cur?.value.state === 'waiting' && !seenEvents(cur.value).includes(ev.eventKey);
        i++
      ) {
        const stored = await p.store.putCommit(
          { ...cur.value, events: withEvent(seenEvents(cur.value), ev.eventKey) },
          cur.etag,
        );
        cur = await p.store.commit(ev.sha);
        if (stored) break;
      }
      if (cur?.value.state !== 'waiting')
        return ignore(`commit ${ev.sha.slice(0, 7)} ${cur?.value.state ?? 'changed'} meanwhile`);
      return evaluate(cur, log, deliveryId, true, ctx);
    }
    if (existing?.value.state === 'passed') return ignore(`commit ${ev.sha.slice(0, 7)} already accepted`);
    if (existing?.value.state === 'blocked' && seenEvents(existing.value).includes(ev.eventKey)) {
      // the same run (or push) again, whatever its X-GitHub-Delivery: a replayed body never re-opens a blocked commit
      const why = existing.value.reason ? `blocked: ${existing.value.reason}` : 'blocked';
      return ignore(
        `${ev.eventLabel} was already evaluated (${why}); only a new event re-runs the gate`,
        'replay',
      );
    }
    const firstSeenAt = iso();
    const state: CommitGateState = {
      sha: ev.sha,
      state: 'waiting',
      firstSeenAt,
      deadline: new Date(now() + p.policy.waitMinutes * 60000).toISOString(),
      trigger: ev.trigger,
      branch: ev.branch,
      mergedBy: ev.mergedBy,
      deliveryId,
      events: withEvent(existing ? seenEvents(existing.value) : [], ev.eventKey),
    };
    // a blocked commit with a new event (a re-run of the image workflow) is evaluated afresh
    if (!(await p.store.putCommit(state, existing?.etag)))
      return ignore(`commit ${ev.sha.slice(0, 7)} is being handled by another delivery`);
    const cur = await p.store.commit(ev.sha);
    return evaluate(cur!, log, deliveryId, true, ctx);
  }

  async function onCoverageUpdate(sha: string, deliveryId: string, log: Logger): Promise<DeliveryAnswer> {
    const cur = await p.store.commit(sha);
    if (!cur || cur.value.state !== 'waiting') {
      const reason = cur
        ? `commit ${sha.slice(0, 7)} already ${cur.value.state}`
        : `no merge of ${sha.slice(0, 7)} is waiting for coverage`;
      await record({ deliveryId, sha, decision: 'ignored', reason, status: 200 }, log);
      return { status: 200, body: { decision: 'ignored', reason, sha } };
    }
    return evaluate(cur, log, deliveryId, false);
  }

  return {
    async handle(req, ctx) {
      const log = lazyChild(p.log, () => ({ function: 'githubWebhook', invocationId: ctx?.invocationId }));
      const reject = (r: { status: number; code: string; message: string }) => {
        log.warn(`webhook rejected: ${r.message}`, {
          status: r.status,
          code: r.code,
          deliveryId: req.headers.get('x-github-delivery')?.slice(0, 100),
        });
        return json(r.status, { error: r.code, message: r.message });
      };
      const declared = checkDeclaredLength(req.headers);
      if (declared) return reject(declared);
      let body: Uint8Array | 'too-large';
      try {
        body = await readCapped(req);
      } catch {
        return reject({
          status: 400,
          code: 'WEBHOOK.BODY_UNREADABLE',
          message: 'request body could not be read',
        });
      }
      if (body === 'too-large') return reject(tooLarge());
      const v = await verifyRequest(p.secrets, req.headers, body);
      if (isRejection(v)) return reject(v);
      const dlog = log.child({ deliveryId: v.deliveryId, event: v.event });
      if (v.secretUsed === 'previous')
        dlog.warn('webhook signed with the previous secret: finish the rotation in GitHub');

      // Ignored events (and ping) have no side effect and their answer is a pure function of the
      // payload and settings, so a redelivery answers the same without the dedupe claim, and the
      // answer does not wait for the decision record (logged now, stored by the next group write).
      const classified = classifyEvent(v.event, v.payload, p.settings);
      if (classified.kind === 'ping' || classified.kind === 'ignore') {
        const reason = classified.kind === 'ping' ? 'ping: webhook is configured' : classified.reason;
        await record(
          { deliveryId: v.deliveryId, event: v.event, decision: 'ignored', reason, status: 200 },
          dlog,
          false,
        );
        return json(200, { decision: 'ignored', reason });
      }

      for (let attempt = 0; attempt < 3; attempt++) {
        let claimed: boolean;
        try {
          claimed = await p.store.claim(v.deliveryId, v.event);
        } catch (err) {
          dlog.error('intake store unavailable', { error: messageOf(err) });
          return json(
            503,
            {
              error: errorCode(err) ?? 'INTAKE.UNAVAILABLE',
              message: 'intake store unavailable; redeliver later',
            },
            { 'retry-after': '30' },
          );
        }
        if (!claimed) {
          const answer = await p.store
            .waitForAnswer(v.deliveryId, p.duplicateWaitMs ?? 8000)
            .catch(() => undefined);
          if (answer) {
            await record(
              {
                deliveryId: v.deliveryId,
                event: v.event,
                decision: 'duplicate',
                reason: `redelivery of ${v.deliveryId}: answered as before (${String(answer.body.decision)})`,
                status: answer.status,
              },
              dlog,
            );
            return json(answer.status, answer.body, { 'x-intake-duplicate': 'true' });
          }
          if (await p.store.get(v.deliveryId).catch(() => undefined)) {
            return json(
              202,
              { decision: 'processing', reason: `delivery ${v.deliveryId} is being processed` },
              { 'x-intake-duplicate': 'true' },
            );
          }
          continue; // the first copy gave up its claim: try to take it
        }
        try {
          const answer =
            classified.kind === 'merge'
              ? await onMerge(classified, v.deliveryId, dlog, ctx)
              : await onCoverageUpdate(classified.sha, v.deliveryId, dlog);
          await p.store.complete(v.deliveryId, v.event, answer);
          return json(answer.status, answer.body);
        } catch (err) {
          await p.store.release(v.deliveryId).catch(() => undefined);
          await record(
            {
              deliveryId: v.deliveryId,
              event: v.event,
              decision: 'failed',
              reason: messageOf(err),
              status: 503,
            },
            dlog,
          );
          // the detail (it may name a missing setting) goes to the log and the decision record, not to the anonymous route
          return json(
            503,
            {
              error: errorCode(err) ?? 'INTAKE.FAILED',
              message: 'the delivery could not be processed now; redeliver later',
            },
            { 'retry-after': '60' },
          );
        }
      }
      return json(
        503,
        { error: 'INTAKE.BUSY', message: 'could not claim the delivery; redeliver later' },
        { 'retry-after': '30' },
      );
    },

    async gateTimeout({ sha }) {
      const log = p.log.child({ function: 'intakeGateTimeout', sha });
      const cur = await p.store.commit(sha);
      if (!cur || cur.value.state !== 'waiting')
        return { decision: 'none', reason: `commit already ${cur?.value.state ?? 'unknown'}` };
      const a = await evaluate(cur, log, `timeout-${sha.slice(0, 12)}`, false, undefined, true);
      return { decision: String(a.body.decision), reason: String(a.body.reason) };
    },

    list: (limit) => p.store.list(limit),
    flush: () => p.store.flush(),
    close: () => p.store.close(),
  };
}

// --- production wiring ------------------------------------------------------------------------

/** Start (idempotently) the timer orchestration that gives up on a missing coverage status. */
export async function scheduleWithDurable(
  input: { sha: string; deadline: string },
  ctx?: InvocationContext,
): Promise<void> {
  if (!ctx) return;
  const client = df.getClient(ctx);
  const instanceId = `coverage-wait-${input.sha}`;
  try {
    await client.startNew('coverageWait', { instanceId, input });
  } catch (err) {
    // an existing instance for this commit is fine (redelivery / second merge event)
    if (!/exist|409|conflict/i.test(messageOf(err))) throw err;
  }
}

export interface IntakeWiring {
  queue: QueueSender;
  log?: Logger;
  scheduleTimeout?: IntakePorts['scheduleTimeout'];
}

export function createIntakeFromConfig(config: Config, wiring: IntakeWiring): Intake {
  const gh = githubOptionsFromConfig(config);
  const container = ledgerContainer(config);
  const log = wiring.log ?? createLogger();
  const onBackgroundError = (err: unknown, records: number, dropped: number) =>
    log.error('could not store intake decision records; retrying', {
      error: messageOf(err),
      code: errorCode(err),
      records,
      dropped,
    });
  return createIntake({
    secrets: [config.GITHUB_WEBHOOK_SECRET, config.GITHUB_WEBHOOK_SECRET_PREVIOUS],
    settings: intakeSettings(config),
    policy: gatePolicy(config),
    gateContext: config.GATE_STATUS_CONTEXT ?? 'deploy/uat',
    imageRepository: config.REGISTRY_REPOSITORY ?? 'odoo-mta',
    registryHost: registryHost(config),
    github: gh && (gh.token || gh.app) ? createGitHub(gh) : undefined,
    ledger: createLedger(container),
    store: createDeliveriesStore(container, { onBackgroundError }),
    queue: wiring.queue,
    scheduleTimeout: wiring.scheduleTimeout ?? scheduleWithDurable,
    duplicateWaitMs: (config.WEBHOOK_DUPLICATE_WAIT_SECONDS ?? 8) * 1000,
    log,
  });
}

let shared: { intake: Intake; close?: () => Promise<void> } | undefined;

/** The process-wide intake built from the app settings (lazily, so a bad setting fails the request, not the import). */
export function defaultIntake(): Intake {
  if (!shared) {
    const config = loadConfig();
    const queue = createDeployQueueSender(config, process.env);
    shared = { intake: createIntakeFromConfig(config, { queue }), close: queue.close?.bind(queue) };
  }
  return shared.intake;
}

/**
 * Tests: forget the process-wide intake. Resolves once its handed-over decision records are written (or
 * given up) and its background writes are stopped: await it before stopping the storage it writes to,
 * or its retries outlive the test.
 */
export async function resetDefaultIntake(): Promise<void> {
  const old = shared;
  shared = undefined;
  if (!old) return;
  try {
    await old.intake.flush();
  } finally {
    old.intake.close();
    await old.close?.();
  }
}

// --- activities -------------------------------------------------------------------------------

df.app.activity('intakeGateTimeout', {
  handler: async (input: { sha: string }) => defaultIntake().gateTimeout(input),
});

df.app.activity('intakeRecordLaneEvent', {
  handler: async (input: DecisionInput) => {
    const config = loadConfig();
    await createDeliveriesStore(ledgerContainer(config)).record(input);
    createLogger().info(`lane ${input.decision}: ${input.reason}`, input);
  },
});
