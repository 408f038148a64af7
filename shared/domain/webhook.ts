/**
 * GitHub webhook intake, the pure part: signature verification (constant time, secret rotation), the
 * fixed order of request checks with their HTTP statuses, and classification of a verified event into
 * "merge to the default branch", "coverage update for a commit", "ping" or "ignored, because ...".
 *
 * Order of checks (octokit's middleware and GitHub's docs): body size (413) → signature over the raw
 * bytes (401, @octokit/webhooks) → required headers (400) → content type (415) → JSON (400). Nothing is parsed before the
 * signature is verified, so an unauthenticated client learns nothing beyond "401".
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
// @octokit/webhooks is ESM-only. This project compiles to CommonJS (tsconfig "module": "node20") and
// Node ≥ 20.19 (package.json engines) loads an ES module through require(), as it does @octokit/rest:
// a plain import, no dynamic import() needed (jest transforms @octokit/* to CommonJS, jest.config.js).
import { Webhooks, type EmitterWebhookEvent, type EmitterWebhookEventName } from '@octokit/webhooks';

/** GitHub caps webhook payloads at 25 MB; anything larger is refused before it is buffered. */
export const MAX_WEBHOOK_BYTES = 25 * 1024 * 1024;

const SIG_PREFIX = 'sha256=';
const HEX64 = /^[0-9a-f]{64}$/i;

/** One @octokit/webhooks verifier per configured secret (current + previous; bounded across rotations). */
const verifiers = new Map<string, Webhooks>();
function verifier(secret: string): Webhooks {
  let v = verifiers.get(secret);
  if (!v) {
    if (verifiers.size >= 16) verifiers.clear();
    v = new Webhooks({ secret });
    verifiers.set(secret, v);
  }
  return v;
}

// fatal: invalid UTF-8 is an error, not silently replaced (one decoder each: decode() without
// `stream` keeps no state between calls)
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });
// for the signature: ignoreBOM keeps a leading BOM in the text, so it encodes back to the signed bytes
const EXACT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function signPayload(secret: string, body: string | Uint8Array): string {
  return SIG_PREFIX + createHmac('sha256', secret).update(body).digest('hex');
}

/**
 * Verify `X-Hub-Signature-256` against each secret (current first, then the previous one during a
 * rotation), with @octokit/webhooks (constant-time comparison). The header's shape is checked first
 * (a malformed header cannot match anyway). Every secret is tried (no early exit), so timing does not
 * reveal which one matched. Returns which secret matched, or undefined.
 *
 * The library verifies a payload *string* (it signs its UTF-8 encoding). A body that is valid UTF-8 —
 * every real delivery: JSON is UTF-8 — decodes to a string that encodes back to the same bytes, so the
 * library checks exactly what GitHub signed. A body that is not valid UTF-8 has no such string; it is
 * checked over its raw bytes with node:crypto, only so that a signed-but-malformed body still gets
 * today's 400 (malformed JSON) and an unsigned one 401.
 */
export async function verifySignature(
  secrets: ReadonlyArray<string | undefined>,
  body: Uint8Array,
  header: string | null | undefined,
): Promise<'current' | 'previous' | undefined> {
  if (!header || !header.startsWith(SIG_PREFIX)) return undefined;
  const hex = header.slice(SIG_PREFIX.length).trim();
  if (!HEX64.test(hex)) return undefined;
  const signature = SIG_PREFIX + hex.toLowerCase();
  let text: string | undefined;
  try {
    text = EXACT_UTF8.decode(body);
  } catch {
    text = undefined;
  }
  const checks = secrets.map(async (secret) => {
    if (!secret) return false;
    // the library refuses an empty payload (TypeError): an empty body is simply not signed
    if (text !== undefined)
      return (
        text.length > 0 &&
        (await verifier(secret)
          .verify(text, signature)
          .catch(() => false))
      );
    const expected = createHmac('sha256', secret).update(body).digest();
    return timingSafeEqual(expected, Buffer.from(hex, 'hex'));
  });
  const results = await Promise.all(checks);
  const i = results.indexOf(true);
  return i === -1 ? undefined : i === 0 ? 'current' : 'previous';
}

export type Rejection = { status: 400 | 401 | 413 | 415; code: string; message: string };

export interface WebhookHeaders {
  get(name: string): string | null;
}

/** Content-Length larger than the cap (checked before reading the body). */
export function checkDeclaredLength(headers: WebhookHeaders): Rejection | undefined {
  const raw = headers.get('content-length');
  if (raw === null) return undefined;
  const n = Number(raw);
  if (Number.isFinite(n) && n > MAX_WEBHOOK_BYTES) return tooLarge();
  return undefined;
}

export function tooLarge(): Rejection {
  return {
    status: 413,
    code: 'WEBHOOK.TOO_LARGE',
    message: `payload larger than ${MAX_WEBHOOK_BYTES} bytes`,
  };
}

export interface VerifiedRequest {
  event: string;
  deliveryId: string;
  payload: Record<string, unknown>;
  secretUsed: 'current' | 'previous';
}

const DELIVERY_ID = /^[A-Za-z0-9-]{1,100}$/;
const EVENT_NAME = /^[a-z_]{1,64}$/;

/** Everything after the size check, in order. Returns the parsed event or the first rejection. */
export async function verifyRequest(
  secrets: ReadonlyArray<string | undefined>,
  headers: WebhookHeaders,
  body: Uint8Array,
): Promise<VerifiedRequest | Rejection> {
  if (body.byteLength > MAX_WEBHOOK_BYTES) return tooLarge();
  const sigHeader = headers.get('x-hub-signature-256');
  if (!sigHeader)
    return {
      status: 401,
      code: 'WEBHOOK.SIGNATURE_MISSING',
      message: 'X-Hub-Signature-256 header is missing',
    };
  const secretUsed = await verifySignature(secrets, body, sigHeader);
  if (!secretUsed)
    return { status: 401, code: 'WEBHOOK.SIGNATURE_INVALID', message: 'signature does not match' };
  const event = headers.get('x-github-event');
  if (!event || !EVENT_NAME.test(event))
    return {
      status: 400,
      code: 'WEBHOOK.EVENT_MISSING',
      message: 'X-GitHub-Event header is missing or malformed',
    };
  const deliveryId = headers.get('x-github-delivery');
  if (!deliveryId || !DELIVERY_ID.test(deliveryId)) {
    return {
      status: 400,
      code: 'WEBHOOK.DELIVERY_MISSING',
      message: 'X-GitHub-Delivery header is missing or malformed',
    };
  }
  const contentType = (headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (contentType !== 'application/json') {
    return {
      status: 415,
      code: 'WEBHOOK.CONTENT_TYPE',
      message: 'content type must be application/json (set "Content type: application/json" on the webhook)',
    };
  }
  let payload: unknown;
  try {
    payload = JSON.parse(STRICT_UTF8.decode(body));
  } catch {
    return { status: 400, code: 'WEBHOOK.MALFORMED_JSON', message: 'body is not valid UTF-8 JSON' };
  }
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    return { status: 400, code: 'WEBHOOK.MALFORMED_JSON', message: 'body is not a JSON object' };
  }
  return { event, deliveryId, payload: payload as Record<string, unknown>, secretUsed };
}

export function isRejection(v: VerifiedRequest | Rejection): v is Rejection {
  return (v as Rejection).status !== undefined;
}

// --- classification ---------------------------------------------------------------------------

export interface IntakeSettings {
  /** owner/name; unset → every event is ignored */
  repository?: string;
  defaultBranch: string;
  triggerEvent: 'push' | 'workflow_run';
  /** workflow name (`workflow_run.name`) of the image build */
  imageWorkflow: string;
  /** workflow file (`workflow_run.path`, e.g. `.github/workflows/build-image.yml`): the name alone is not trusted */
  imageWorkflowPath: string;
  coverageContext: string;
  /** login of the account that posts the coverage commit status (CI), e.g. `github-actions[bot]` */
  coverageLogin?: string;
  /** id of the GitHub App that creates the coverage check run (CI) */
  coverageAppId?: number;
}

export interface MergeEvent {
  kind: 'merge';
  trigger: 'push' | 'workflow_run';
  repository: string;
  branch: string;
  sha: string;
  mergedBy: string;
  /**
   * What makes this event new, independent of X-GitHub-Delivery: `push:<after>` for a push,
   * `workflow_run:<run id>:<attempt>` for a build. A blocked commit is re-evaluated only on a key it
   * has not seen (a re-run attempt), never on a replayed body.
   */
  eventKey: string;
  /** the same, for people: "push of 1a2b3c4", "workflow run 123 attempt 2" */
  eventLabel: string;
}

export type Classified =
  | { kind: 'ping' }
  | MergeEvent
  | { kind: 'coverage-update'; repository: string; sha: string }
  | { kind: 'ignore'; reason: string };

type Obj = Record<string, unknown>;
/**
 * A payload as received: GitHub's field names (from @octokit/webhooks' types, so a misspelt field does
 * not compile), every value unknown until checked (the body is signed by GitHub, but its shape is still
 * not trusted: junk is ignored, never thrown).
 */
type Untrusted<T> = { [K in keyof T]?: unknown };
type Payload<E extends EmitterWebhookEventName> = Untrusted<EmitterWebhookEvent<E>['payload']>;
type WorkflowRun = Untrusted<EmitterWebhookEvent<'workflow_run.completed'>['payload']['workflow_run']>;
type CheckRunPayload = Untrusted<EmitterWebhookEvent<'check_run.completed'>['payload']['check_run']>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const SHA = /^[0-9a-f]{40}$/;
const ZERO_SHA = '0'.repeat(40);

export function classifyEvent(event: string, payload: Obj, s: IntakeSettings): Classified {
  if (event === 'ping') return { kind: 'ping' };
  const repo = str(obj(payload.repository).full_name);
  if (!s.repository) return { kind: 'ignore', reason: 'GITHUB_REPOSITORY is not configured' };
  if (!repo || repo.toLowerCase() !== s.repository.toLowerCase()) {
    return { kind: 'ignore', reason: `repository ${repo ?? '(none)'} is not ${s.repository}` };
  }
  const sender = str(obj(payload.sender).login);
  switch (event) {
    case 'push': {
      const push = payload as Payload<'push'>;
      if (s.triggerEvent !== 'push')
        return { kind: 'ignore', reason: `push ignored: deploys are triggered by ${s.triggerEvent}` };
      const ref = str(push.ref) ?? '';
      if (ref !== `refs/heads/${s.defaultBranch}`)
        return { kind: 'ignore', reason: `push to ${ref || '(no ref)'}, not refs/heads/${s.defaultBranch}` };
      // Stryker disable next-line StringLiteral: any fallback that is not 40 hex digits is refused the same way as a missing "after"
      const after = str(push.after) ?? '';
      if (push.deleted === true || after === ZERO_SHA) return { kind: 'ignore', reason: 'branch deletion' };
      if (!SHA.test(after)) return { kind: 'ignore', reason: 'push without a valid "after" commit sha' };
      const mergedBy = str(obj(push.pusher).name) ?? sender ?? 'unknown';
      return {
        kind: 'merge',
        trigger: 'push',
        repository: repo,
        branch: s.defaultBranch,
        sha: after,
        mergedBy,
        eventKey: `push:${after}`,
        eventLabel: `push of ${after.slice(0, 7)}`,
      };
    }
    case 'workflow_run': {
      if (s.triggerEvent !== 'workflow_run')
        return { kind: 'ignore', reason: `workflow_run ignored: deploys are triggered by ${s.triggerEvent}` };
      const wr = payload as Payload<'workflow_run.completed'>;
      const run = obj(wr.workflow_run) as WorkflowRun;
      const name = str(run.name) || str(obj(wr.workflow).name);
      if (name !== s.imageWorkflow)
        return {
          kind: 'ignore',
          reason: `workflow "${name ?? '(none)'}" is not the image workflow "${s.imageWorkflow}"`,
        };
      if (wr.action !== 'completed')
        return {
          kind: 'ignore',
          reason: `workflow_run ${str(wr.action) ?? '(no action)'}, not completed`,
        };
      // the file, not the name: any branch can add a workflow of the same name
      const file = str(run.path);
      if (file !== s.imageWorkflowPath)
        return {
          kind: 'ignore',
          reason: `workflow file ${file ?? '(none)'} is not the image workflow ${s.imageWorkflowPath}`,
        };
      // only a build started by a push (a merge); not a dispatch, a schedule or a pull request
      const trigger = str(run.event);
      if (trigger !== 'push')
        return { kind: 'ignore', reason: `workflow_run triggered by ${trigger ?? '(none)'}, not push` };
      if (run.conclusion !== 'success')
        return {
          kind: 'ignore',
          reason: `workflow_run concluded ${str(run.conclusion) ?? '(none)'}, not success`,
        };
      // a tag can be named like the branch: the intake also checks through the API that the commit is on it
      const branch = str(run.head_branch);
      if (branch !== s.defaultBranch)
        return {
          kind: 'ignore',
          reason: `workflow_run on ${branch ?? '(no branch)'}, not ${s.defaultBranch}`,
        };
      const headRepo = str(obj(run.head_repository).full_name);
      if (headRepo && headRepo.toLowerCase() !== repo.toLowerCase())
        return { kind: 'ignore', reason: `workflow_run built ${headRepo}, not ${repo}` };
      // Stryker disable next-line StringLiteral: any fallback that is not 40 hex digits is refused the same way as a missing head_sha
      const sha = str(run.head_sha) ?? '';
      if (!SHA.test(sha)) return { kind: 'ignore', reason: 'workflow_run without a valid head_sha' };
      const runId = run.id;
      if (typeof runId !== 'number' || !Number.isSafeInteger(runId) || runId <= 0)
        return { kind: 'ignore', reason: 'workflow_run without a valid run id' };
      // run_attempt is in every payload since 2021; absent means the first attempt
      const attempt = run.run_attempt === undefined ? 1 : run.run_attempt;
      if (typeof attempt !== 'number' || !Number.isSafeInteger(attempt) || attempt <= 0)
        return { kind: 'ignore', reason: 'workflow_run without a valid run_attempt' };
      const mergedBy =
        str(obj(run.triggering_actor).login) ?? str(obj(run.actor).login) ?? sender ?? 'unknown';
      return {
        kind: 'merge',
        trigger: 'workflow_run',
        repository: repo,
        branch,
        sha,
        mergedBy,
        eventKey: `workflow_run:${runId}:${attempt}`,
        eventLabel: `workflow run ${runId} attempt ${attempt}`,
      };
    }
    case 'status': {
      const status = payload as Payload<'status'>;
      const context = str(status.context);
      if (context !== s.coverageContext)
        return {
          kind: 'ignore',
          reason: `status context "${context ?? '(none)'}" is not "${s.coverageContext}"`,
        };
      // Stryker disable next-line StringLiteral: any fallback that is not 40 hex digits is refused the same way as a missing sha
      const sha = str(status.sha) ?? '';
      if (!SHA.test(sha)) return { kind: 'ignore', reason: 'status without a valid sha' };
      return { kind: 'coverage-update', repository: repo, sha };
    }
    case 'check_run': {
      const cr = obj((payload as Payload<'check_run.completed'>).check_run) as CheckRunPayload;
      const name = str(cr.name);
      if (name !== s.coverageContext)
        return { kind: 'ignore', reason: `check run "${name ?? '(none)'}" is not "${s.coverageContext}"` };
      // Stryker disable next-line StringLiteral: any fallback that is not 40 hex digits is refused the same way as a missing head_sha
      const sha = str(cr.head_sha) ?? '';
      if (!SHA.test(sha)) return { kind: 'ignore', reason: 'check_run without a valid head_sha' };
      return { kind: 'coverage-update', repository: repo, sha };
    }
    default:
      return { kind: 'ignore', reason: `event ${event} is not used` };
  }
}
