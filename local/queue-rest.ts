/**
 * The Service Bus REST "Send Message" protocol (`POST /{queue}/messages`), parsed into a
 * `QueueMessageInput` for the embedded host's queue, so that an unmodified HTTP sender works locally.
 *
 * What is read (Service Bus REST docs, "Send Message" and "Message headers and properties"):
 * - body: the payload bytes. Decoded as UTF-8; a body that parses as JSON is stored as that value
 *   (as the Functions Node worker hands JSON to a trigger), otherwise as the string. With
 *   `Content-Type: application/octet-stream` the bytes are kept as a Buffer.
 * - `BrokerProperties`: one JSON object. Read: MessageId, SessionId, PartitionKey (must equal
 *   SessionId when both are set), ScheduledEnqueueTimeUtc (RFC 1123, `Sun, 06 Nov 1994 08:49:37 GMT`),
 *   Label (→ subject), CorrelationId. Others (TimeToLive, To, ReplyTo, ...) are accepted and ignored,
 *   as Service Bus ignores unrecognized broker properties.
 * - every other non-standard header is a custom (application) property: `"quoted"` → string,
 *   `true`/`false` → boolean, a plain number → number, anything else → the raw string. Node lowercases
 *   header names, so property names arrive lowercased.
 * Answers: 201 (also for a duplicate, which Service Bus drops silently); 400 with the reason for a
 * malformed header; 403 for a body over 256 KB (Standard tier limit); 410 for an unknown queue.
 */
import type { QueueMessageInput } from './queue';

export const MAX_MESSAGE_BYTES = 256 * 1024;
export const MAX_ID_LENGTH = 128;
const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,259}$/;

/** Headers that are part of HTTP or of this host, never custom message properties. */
const NOT_PROPERTIES = new Set([
  'accept',
  'accept-charset',
  'accept-encoding',
  'accept-language',
  'authorization',
  'brokerproperties',
  'cache-control',
  'connection',
  'content-encoding',
  'content-language',
  'content-length',
  'content-md5',
  'content-type',
  'cookie',
  'date',
  'expect',
  'forwarded',
  'host',
  'keep-alive',
  'origin',
  'pragma',
  'referer',
  'request-id',
  'te',
  'traceparent',
  'tracestate',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'user-agent',
  'via',
  'x-functions-key',
  'x-request-id',
]);
const NOT_PROPERTY_PREFIXES = ['x-ms-', 'x-forwarded-', 'proxy-', 'sec-', 'if-', 'access-control-'];

/** RFC 1123 date as Service Bus writes it: `Sun, 06 Nov 1994 08:49:37 GMT`. */
const RFC1123 =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

export type RestParse =
  | { ok: true; message: QueueMessageInput }
  | { ok: false; status: number; reason: string };

export function isValidQueueName(name: string): boolean {
  return QUEUE_NAME.test(name) && !name.includes('//') && !name.endsWith('/');
}

/** Service Bus answers errors as `<Error><Code>..</Code><Detail>..</Detail></Error>`. */
export function restErrorBody(status: number, reason: string): string {
  const esc = reason.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return `<Error><Code>${status}</Code><Detail>${esc}</Detail></Error>`;
}

function fail(status: number, reason: string): RestParse {
  return { ok: false, status, reason };
}

function propertyValue(raw: string): string | number | boolean {
  const v = raw.trim();
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) {
    try {
      const parsed: unknown = JSON.parse(v);
      if (typeof parsed === 'string') return parsed;
    } catch {
      /* not a JSON string: keep the text between the quotes */
    }
    return v.slice(1, -1);
  }
  if (v === 'true') return true;
  if (v === 'false') return false;
  if (/^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$/.test(v)) {
    const n = Number(v);
    if (Number.isFinite(n)) return n;
  }
  return raw;
}

function optionalString(
  props: Record<string, unknown>,
  key: string,
  maxLength: number,
): string | undefined | { error: string } {
  const v = props[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') return { error: `BrokerProperties.${key} must be a string (got ${typeof v})` };
  if (v.length === 0) return { error: `BrokerProperties.${key} must not be empty` };
  if (v.length > maxLength)
    return { error: `BrokerProperties.${key} is longer than ${maxLength} characters` };
  return v;
}

function isError(v: unknown): v is { error: string } {
  return typeof v === 'object' && v !== null && 'error' in v;
}

/** Parse a REST send request. Never throws: bad input gives a status and a reason. */
export function parseRestSend(
  queue: string,
  req: { headers: Record<string, string | string[] | undefined>; body: Buffer | undefined },
): RestParse {
  if (!isValidQueueName(queue))
    return fail(
      400,
      `invalid queue name ${JSON.stringify(queue.slice(0, 80))}: expected letters, digits, '.', '-', '_', '/' (at most 260)`,
    );
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  const body = req.body ?? Buffer.alloc(0);
  if (body.length > MAX_MESSAGE_BYTES)
    return fail(
      403,
      `message body of ${body.length} bytes exceeds the maximum message size of ${MAX_MESSAGE_BYTES} bytes`,
    );

  let props: Record<string, unknown> = {};
  const rawProps = headers['brokerproperties'];
  if (rawProps !== undefined && rawProps.trim() !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(rawProps);
    } catch (err) {
      return fail(400, `BrokerProperties header is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      return fail(400, 'BrokerProperties header must be a JSON object');
    props = parsed as Record<string, unknown>;
  }

  const messageId = optionalString(props, 'MessageId', MAX_ID_LENGTH);
  if (isError(messageId)) return fail(400, messageId.error);
  const sessionId = optionalString(props, 'SessionId', MAX_ID_LENGTH);
  if (isError(sessionId)) return fail(400, sessionId.error);
  const partitionKey = optionalString(props, 'PartitionKey', MAX_ID_LENGTH);
  if (isError(partitionKey)) return fail(400, partitionKey.error);
  if (sessionId !== undefined && partitionKey !== undefined && sessionId !== partitionKey) {
    return fail(
      400,
      'BrokerProperties.SessionId and BrokerProperties.PartitionKey must be the same value when both are set',
    );
  }
  const label = optionalString(props, 'Label', 1024);
  if (isError(label)) return fail(400, label.error);
  const correlationId = optionalString(props, 'CorrelationId', MAX_ID_LENGTH);
  if (isError(correlationId)) return fail(400, correlationId.error);

  let scheduled: Date | undefined;
  const rawScheduled = props['ScheduledEnqueueTimeUtc'];
  if (rawScheduled !== undefined && rawScheduled !== null) {
    if (
      typeof rawScheduled !== 'string' ||
      !RFC1123.test(rawScheduled.trim()) ||
      Number.isNaN(Date.parse(rawScheduled))
    ) {
      return fail(
        400,
        `BrokerProperties.ScheduledEnqueueTimeUtc must be an RFC 1123 date like "Sun, 06 Nov 1994 08:49:37 GMT" (got ${JSON.stringify(String(rawScheduled).slice(0, 60))})`,
      );
    }
    scheduled = new Date(Date.parse(rawScheduled));
  }

  const applicationProperties: Record<string, string | number | boolean> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (NOT_PROPERTIES.has(name) || NOT_PROPERTY_PREFIXES.some((p) => name.startsWith(p))) continue;
    applicationProperties[name] = propertyValue(value);
  }

  const contentType = headers['content-type'];
  let decoded: unknown;
  if (contentType && /^application\/octet-stream\b/i.test(contentType)) {
    decoded = Buffer.from(body);
  } else {
    const text = body.toString('utf8');
    try {
      decoded = text.trim() === '' ? text : JSON.parse(text);
    } catch {
      decoded = text;
    }
  }

  const message: QueueMessageInput = { body: decoded, applicationProperties };
  if (messageId !== undefined) message.messageId = messageId;
  if (sessionId !== undefined) message.sessionId = sessionId;
  if (scheduled !== undefined) message.scheduledEnqueueTimeUtc = scheduled;
  if (contentType !== undefined) message.contentType = contentType;
  if (label !== undefined) message.subject = label;
  if (correlationId !== undefined) message.correlationId = correlationId;
  return { ok: true, message };
}
