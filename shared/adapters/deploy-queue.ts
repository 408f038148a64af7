/**
 * Sends deploy requests to the deploy queue: message id = idempotency key (Service Bus duplicate
 * detection drops a resend), session id = environment (one deploy at a time per environment).
 *
 * Two implementations behind one port:
 * - Azure: `@azure/service-bus` with the app's managed identity (`DefaultAzureCredential`) on
 *   `ServiceBusConnection__fullyQualifiedNamespace`, queue `DEPLOY_QUEUE_NAME`.
 * - Local: the Service Bus REST "Send Message" protocol (`POST {base}/{queue}/messages` with a
 *   `BrokerProperties` header) against the embedded host (`LOCAL_SERVICEBUS_URL`, key from
 *   `LOCAL_HOST_KEY` in `x-functions-key`). The same protocol real Service Bus speaks, so the local
 *   queue sees exactly what a REST client would send.
 * Errors: `QUEUE.UNAVAILABLE` (retryable: network, timeout, 5xx, 429, busy service) or
 * `QUEUE.REJECTED` (not retryable: bad message, unknown queue, refused credentials).
 */
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { ServiceBusClient, type ServiceBusMessage } from '@azure/service-bus';
import type { Config } from '../config';
import { PipelineError, messageOf } from '../domain/errors';
import { redact } from '../log';

/**
 * A received message that must not be processed nor retried: the receiving trigger throws it, and the
 * message goes to the dead-letter queue with `deadLetterReason` (the code) and the message text as
 * description. The local queue dead-letters it at once; Service Bus after `maxDeliveryCount` failed
 * deliveries (the Node v4 trigger cannot settle a message itself), the reason being in the log.
 */
export class QueueDeadLetter extends PipelineError {
  readonly deadLetterReason: string;
  constructor(description: string, code = 'QUEUE.BAD_MESSAGE') {
    super(code, description, false);
    this.deadLetterReason = code;
  }
}

export interface DeployQueueMessage {
  body: unknown;
  /** idempotency key (duplicate detection) */
  messageId: string;
  /** the environment (session) */
  sessionId: string;
  scheduledEnqueueTimeUtc?: Date;
}

export interface DeployQueueSender {
  send(msg: DeployQueueMessage): Promise<void>;
  close(): Promise<void>;
}

const MAX_ID = 128;

function validate(msg: DeployQueueMessage): void {
  for (const key of ['messageId', 'sessionId'] as const) {
    const v = msg[key];
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_ID) {
      throw new PipelineError(
        'QUEUE.REJECTED',
        `deploy message ${key} must be a non-empty string of at most ${MAX_ID} characters`,
      );
    }
  }
  if (
    msg.scheduledEnqueueTimeUtc !== undefined &&
    !(msg.scheduledEnqueueTimeUtc instanceof Date && !Number.isNaN(msg.scheduledEnqueueTimeUtc.getTime()))
  ) {
    throw new PipelineError('QUEUE.REJECTED', 'deploy message scheduledEnqueueTimeUtc must be a valid Date');
  }
  if (msg.body === undefined) throw new PipelineError('QUEUE.REJECTED', 'deploy message has no body');
}

// --- Azure -----------------------------------------------------------------------------------------

/** The Service Bus message the Azure sender puts on the queue. */
export function toServiceBusMessage(msg: DeployQueueMessage): ServiceBusMessage {
  validate(msg);
  const out: ServiceBusMessage = {
    body: msg.body,
    messageId: msg.messageId,
    sessionId: msg.sessionId,
    contentType: 'application/json',
  };
  if (msg.scheduledEnqueueTimeUtc) out.scheduledEnqueueTimeUtc = msg.scheduledEnqueueTimeUtc;
  return out;
}

const RETRYABLE = new Set(['ServiceBusy', 'ServiceTimeout', 'ServiceCommunicationProblem', 'QuotaExceeded']);
const NOT_RETRYABLE = new Set([
  'MessagingEntityNotFound',
  'MessagingEntityDisabled',
  'UnauthorizedAccess',
  'MessageSizeExceeded',
]);

/** Maps an `@azure/service-bus` error (ServiceBusError / MessagingError carry `retryable`) to a code. */
export function mapServiceBusError(err: unknown, queueName: string): PipelineError {
  if (err instanceof PipelineError) return err;
  const e = err as { code?: unknown; retryable?: unknown; name?: unknown };
  const code = typeof e?.code === 'string' ? e.code : undefined;
  // The code decides when it is known (a constructed ServiceBusError defaults to retryable = true);
  // otherwise the SDK's own retryable flag (set when it translates AMQP/network errors).
  const retryable = NOT_RETRYABLE.has(code ?? '')
    ? false
    : RETRYABLE.has(code ?? '') || e?.retryable === true;
  const text = `Service Bus send to ${queueName} failed${code ? ` (${code})` : ''}: ${redact(messageOf(err))}`;
  return retryable
    ? new PipelineError('QUEUE.UNAVAILABLE', text, true)
    : new PipelineError('QUEUE.REJECTED', text, false);
}

/** The slice of `ServiceBusSender` this adapter uses (tests pass a stand-in). */
export interface ServiceBusSenderLike {
  sendMessages(message: ServiceBusMessage): Promise<void>;
  close(): Promise<void>;
}

export class AzureDeployQueueSender implements DeployQueueSender {
  private readonly client?: ServiceBusClient;
  private readonly sender: ServiceBusSenderLike;
  private readonly queueName: string;

  constructor(opts: {
    fullyQualifiedNamespace: string;
    queueName: string;
    credential?: TokenCredential;
    sender?: ServiceBusSenderLike;
  }) {
    this.queueName = opts.queueName;
    if (opts.sender) {
      this.sender = opts.sender;
    } else {
      this.client = new ServiceBusClient(
        opts.fullyQualifiedNamespace,
        opts.credential ?? new DefaultAzureCredential(),
      );
      this.sender = this.client.createSender(opts.queueName);
    }
  }

  async send(msg: DeployQueueMessage): Promise<void> {
    const sbMessage = toServiceBusMessage(msg);
    try {
      await this.sender.sendMessages(sbMessage);
    } catch (err) {
      throw mapServiceBusError(err, this.queueName);
    }
  }

  async close(): Promise<void> {
    await this.sender.close();
    await this.client?.close();
  }
}

// --- Local (Service Bus REST send) -----------------------------------------------------------------

export interface LocalDeployQueueSenderOptions {
  /** e.g. http://127.0.0.1:7071/_local/servicebus */
  baseUrl: string;
  queueName: string;
  /** sent as `x-functions-key` */
  hostKey?: string;
  timeoutMs?: number;
  fetchImpl?: typeof fetch;
}

/** The REST request for one message (exported for the protocol test). */
export function toRestRequest(msg: DeployQueueMessage): { headers: Record<string, string>; body: string } {
  validate(msg);
  const brokerProperties: Record<string, string> = { MessageId: msg.messageId, SessionId: msg.sessionId };
  // Service Bus REST wants RFC 1123 dates; toUTCString() writes exactly that form.
  if (msg.scheduledEnqueueTimeUtc)
    brokerProperties.ScheduledEnqueueTimeUtc = msg.scheduledEnqueueTimeUtc.toUTCString();
  let body: string;
  try {
    body = JSON.stringify(msg.body);
  } catch (err) {
    throw new PipelineError('QUEUE.REJECTED', `deploy message body cannot be serialized: ${messageOf(err)}`);
  }
  return {
    headers: {
      'content-type': 'application/json; charset=utf-8',
      brokerproperties: JSON.stringify(brokerProperties),
    },
    body,
  };
}

function restDetail(text: string): string {
  const m = /<Detail>([\s\S]*?)<\/Detail>/.exec(text);
  const detail = (m ? m[1].replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&') : text).trim();
  return redact(detail.length > 500 ? detail.slice(0, 497) + '...' : detail);
}

export class LocalDeployQueueSender implements DeployQueueSender {
  private readonly url: string;
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;

  constructor(private readonly opts: LocalDeployQueueSenderOptions) {
    let base: URL;
    try {
      base = new URL(opts.baseUrl);
    } catch {
      throw new PipelineError(
        'QUEUE.REJECTED',
        `local Service Bus URL is not a URL: ${JSON.stringify(opts.baseUrl)}`,
      );
    }
    this.url = `${base.toString().replace(/\/+$/, '')}/${encodeURIComponent(opts.queueName)}/messages`;
    this.fetchImpl = opts.fetchImpl ?? fetch;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  async send(msg: DeployQueueMessage): Promise<void> {
    const req = toRestRequest(msg);
    const headers: Record<string, string> = { ...req.headers };
    if (this.opts.hostKey) headers['x-functions-key'] = this.opts.hostKey;
    let res: Response;
    try {
      res = await this.fetchImpl(this.url, {
        method: 'POST',
        headers,
        body: req.body,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      const why =
        (err as { name?: string }).name === 'TimeoutError'
          ? `no answer within ${this.timeoutMs} ms`
          : `${messageOf(err)}${cause ? ` (${cause})` : ''}`;
      throw new PipelineError('QUEUE.UNAVAILABLE', `local queue at ${this.url} unreachable: ${why}`, true);
    }
    const text = await res.text().catch(() => '');
    if (res.status === 201 || res.status === 200) return;
    const detail = restDetail(text) || res.statusText;
    if (res.status >= 500 || res.status === 429) {
      throw new PipelineError('QUEUE.UNAVAILABLE', `local queue answered ${res.status}: ${detail}`, true);
    }
    throw new PipelineError(
      'QUEUE.REJECTED',
      `local queue refused message ${msg.messageId} (${res.status}): ${detail}`,
      false,
    );
  }

  async close(): Promise<void> {
    /* nothing held between sends */
  }
}

// --- factory ---------------------------------------------------------------------------------------

/** Picks the sender for PIPELINE_RUNTIME: Service Bus in Azure, the embedded host's REST endpoint locally. */
export function createDeployQueueSender(
  config: Config,
  env: Record<string, string | undefined> = process.env,
  deps: { credential?: TokenCredential } = {},
): DeployQueueSender {
  // Config marks every key optional in its type; DEPLOY_QUEUE_NAME and LOCAL_HOST_PORT have defaults.
  const queueName = config.DEPLOY_QUEUE_NAME ?? 'deploy-requests';
  if (config.PIPELINE_RUNTIME === 'azure') {
    const ns = config.ServiceBusConnection__fullyQualifiedNamespace;
    if (!ns)
      throw new PipelineError(
        'CONFIG.INVALID',
        'ServiceBusConnection__fullyQualifiedNamespace is missing (expected <namespace>.servicebus.windows.net)',
      );
    return new AzureDeployQueueSender({
      fullyQualifiedNamespace: ns,
      queueName,
      credential: deps.credential,
    });
  }
  const baseUrl =
    config.LOCAL_SERVICEBUS_URL ??
    env.LOCAL_SERVICEBUS_URL ??
    `http://127.0.0.1:${config.LOCAL_HOST_PORT ?? 7071}/_local/servicebus`;
  const hostKey = env.LOCAL_HOST_KEY?.trim() || undefined;
  return new LocalDeployQueueSender({ baseUrl, queueName, hostKey });
}
