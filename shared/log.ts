/**
 * Structured logging: one JSON object per line (or a compact human line with LOG_FORMAT=pretty),
 * with correlation fields (instanceId, deliveryId, function). Secrets never reach a log line:
 * every value registered with `registerSecret()` (all secret settings are, at config load) and
 * common token shapes are masked.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

const secrets = new Set<string>();
const PATTERNS: RegExp[] = [
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
  /\bgh[pousr]_[A-Za-z0-9]{20,}\b/g,
  /\bxox[abposr]-[A-Za-z0-9-]{10,}\b/g,
  /AccountKey=[^;\s"]+/g,
  /SharedAccessKey=[^;\s"]+/g,
  /([?&](?:code|sig|token)=)[^&\s"]+/g,
  // signed approval/rollback links: the token in the path is a single-use credential
  /(\/api\/approvals\/)[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g,
];

export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 6) secrets.add(value);
}

export function redact(text: string): string {
  let out = text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join('***');
  for (const p of PATTERNS)
    out = out.replace(p, (m, g1) => (typeof g1 === 'string' && m.startsWith(g1) ? `${g1}***` : '***'));
  return out;
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
  /** whether a line at this level would be written (absent: assume it would) */
  enabled?(level: LogLevel): boolean;
}

export type LogSink = (line: string, level: LogLevel) => void;

const defaultSink: LogSink = (line, level) =>
  (level === 'error' || level === 'warn' ? process.stderr : process.stdout).write(line + '\n');

export function createLogger(
  opts: { level?: LogLevel; sink?: LogSink; fields?: Record<string, unknown>; pretty?: boolean } = {},
): Logger {
  const min = ORDER[opts.level ?? ((process.env.LOG_LEVEL as LogLevel) || 'info')] ?? ORDER.info;
  const sink = opts.sink ?? defaultSink;
  const base = opts.fields ?? {};
  const pretty = opts.pretty ?? process.env.LOG_FORMAT === 'pretty';
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    const rec = { t: new Date().toISOString(), level, msg, ...base, ...fields };
    let line: string;
    if (pretty) {
      const extra = Object.entries({ ...base, ...fields })
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      line = `${rec.t} ${level.toUpperCase().padEnd(5)} ${msg}${extra ? ' ' + extra : ''}`;
    } else {
      line = JSON.stringify(rec, (_k, v) =>
        v instanceof Error ? { message: v.message, code: (v as { code?: string }).code } : v,
      );
    }
    sink(redact(line), level);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ level: opts.level, sink, fields: { ...base, ...fields }, pretty }),
    enabled: (level) => ORDER[level] >= min,
  };
}
