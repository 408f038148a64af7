/**
 * Custom events and metrics for the Azure Portal workbook (infrastructure/workbooks/pipeline.workbook.json).
 *
 * In Azure the app sends them through OpenTelemetry with `@azure/monitor-opentelemetry` (events become
 * rows of `customEvents`, metrics rows of `customMetrics`). Nothing is sent, and nothing is loaded,
 * when APPLICATIONINSIGHTS_CONNECTION_STRING is unset: every call is then a no-op that logs at debug.
 * Telemetry never breaks a deploy: a bad connection string or an exporter failure is logged and ignored.
 *
 * The names below are read by the workbook queries; test/infrastructure checks both sides agree.
 */
import { createLogger, redact, type Logger } from './log';

/** customEvents names (one row per occurrence, numbers travel as properties too). */
export const TELEMETRY_EVENTS = {
  /** a deploy ended: environment, version, outcome (Succeeded|Failed|RolledBack|Superseded), durationSeconds */
  deploy: 'odoo_mta.deploy',
  /** a rollback ran: environment, version, reason */
  rollback: 'odoo_mta.rollback',
  /** an approval request was decided: environment, version, decision (approved|rejected|expired), waitMinutes */
  approval: 'odoo_mta.approval',
  /** a backup finished: environment, sizeBytes, durationSeconds */
  backup: 'odoo_mta.backup',
  /** a webhook delivery was decided: decision (accepted|blocked|ignored|rejected) */
  intake: 'odoo_mta.intake',
} as const;

/** customMetrics names (histograms). */
export const TELEMETRY_METRICS = {
  deployDuration: 'odoo_mta.deploy.duration_seconds',
  approvalWait: 'odoo_mta.approval.wait_minutes',
  backupSize: 'odoo_mta.backup.size_bytes',
} as const;

export type TelemetryEventName = (typeof TELEMETRY_EVENTS)[keyof typeof TELEMETRY_EVENTS];
export type TelemetryMetricName = (typeof TELEMETRY_METRICS)[keyof typeof TELEMETRY_METRICS];
export type TelemetryProps = Record<string, string | number | boolean | undefined>;

export interface Telemetry {
  /** true when telemetry goes to Application Insights */
  readonly enabled: boolean;
  trackEvent(name: TelemetryEventName, props?: TelemetryProps): void;
  trackMetric(name: TelemetryMetricName, value: number, props?: TelemetryProps): void;
  /** send what is buffered (end of a function invocation, tests) */
  flush(): Promise<void>;
  /** flush and stop the exporter */
  shutdown(): Promise<void>;
}

/** The custom-event attribute the Azure Monitor exporter maps to a `customEvents` row. */
const CUSTOM_EVENT_ATTRIBUTE = 'microsoft.custom_event.name';

type Attributes = Record<string, string | number | boolean>;

/** Drop undefined values and mask secrets in strings (the same redaction as the logs). */
export function cleanProps(props: TelemetryProps | undefined): Attributes {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v === undefined) continue;
    out[k] = typeof v === 'string' ? redact(v) : v;
  }
  return out;
}

/**
 * Entra ID ingestion: APPLICATIONINSIGHTS_AUTHENTICATION_STRING = `ClientId=<id>;Authorization=AAD`
 * (set by the Bicep template for the user-assigned identity). Returns the client id, '' for a
 * system-assigned identity, or undefined when the string does not ask for Entra ID.
 */
export function entraClientId(authString: string | undefined): string | undefined {
  if (!authString) return undefined;
  const parts = new Map(
    authString
      .split(';')
      .map((p) => p.split('='))
      .filter((kv) => kv.length === 2)
      .map(([k, v]) => [k.trim().toLowerCase(), v.trim()] as const),
  );
  if (parts.get('authorization')?.toLowerCase() !== 'aad') return undefined;
  return parts.get('clientid') ?? '';
}

function noop(log: Logger, reason: string): Telemetry {
  log.debug('telemetry disabled', { reason });
  return {
    enabled: false,
    trackEvent: (name, props) =>
      log.debug('telemetry event (not sent)', { event: name, ...cleanProps(props) }),
    trackMetric: (name, value, props) =>
      log.debug('telemetry metric (not sent)', { metric: name, value, ...cleanProps(props) }),
    flush: async () => undefined,
    shutdown: async () => undefined,
  };
}

interface ForceFlushable {
  forceFlush?: () => Promise<void>;
}

let active: Telemetry | undefined;

/**
 * Start telemetry for this process. The OpenTelemetry SDK is global, so only the first call with a
 * connection string starts an exporter; later calls get the same instance until `shutdown()`.
 */
export interface TelemetryOptions {
  /** extra CA certificate (PEM) trusted for the ingestion endpoint: a TLS-inspecting proxy, or a test endpoint */
  caCertificate?: string | Buffer;
}

export function createTelemetry(
  env: Record<string, string | undefined> = process.env,
  log: Logger = createLogger({ fields: { component: 'telemetry' } }),
  options: TelemetryOptions = {},
): Telemetry {
  const connectionString = env.APPLICATIONINSIGHTS_CONNECTION_STRING?.trim();
  if (!connectionString) return noop(log, 'APPLICATIONINSIGHTS_CONNECTION_STRING is not set');
  if (!/(^|;)\s*(InstrumentationKey|ConnectionString)\s*=/i.test(connectionString)) {
    log.warn(
      'telemetry disabled: APPLICATIONINSIGHTS_CONNECTION_STRING is malformed (expected InstrumentationKey=...;IngestionEndpoint=...)',
    );
    return noop(log, 'malformed connection string');
  }
  if (active?.enabled) return active;

  // Loaded only here: without a connection string the SDK is never required.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const distro = require('@azure/monitor-opentelemetry') as typeof import('@azure/monitor-opentelemetry');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const otel = require('@opentelemetry/api') as typeof import('@opentelemetry/api');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const otelLogs = require('@opentelemetry/api-logs') as typeof import('@opentelemetry/api-logs');

  const clientId = entraClientId(env.APPLICATIONINSIGHTS_AUTHENTICATION_STRING);
  let credential: import('@azure/identity').TokenCredential | undefined;
  if (clientId !== undefined) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const identity = require('@azure/identity') as typeof import('@azure/identity');
    credential = clientId
      ? new identity.ManagedIdentityCredential({ clientId })
      : new identity.ManagedIdentityCredential();
  }

  try {
    distro.useAzureMonitor({
      azureMonitorExporterOptions: {
        connectionString,
        credential,
        disableOfflineStorage: true,
        ...(options.caCertificate ? { tlsOptions: { ca: options.caCertificate } } : {}),
      },
      enableLiveMetrics: false,
      enableStandardMetrics: false,
      // the Functions host reports the worker's CPU and memory itself; the distro's performance counters
      // run on a meter provider of their own that shutdownAzureMonitor() never stops (it kept exporting
      // every 60 s after shutdown: "Cannot log after tests are done" in CI)
      enablePerformanceCounters: false,
    });
  } catch (err) {
    log.warn('telemetry disabled: the Azure Monitor exporter did not start', {
      error: (err as Error).message,
    });
    return noop(log, 'exporter failed to start');
  }

  const logger = otelLogs.logs.getLogger('odoo-mta-pipeline');
  const meter = otel.metrics.getMeter('odoo-mta-pipeline');
  const histograms = new Map<string, import('@opentelemetry/api').Histogram>();
  const guard = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (err) {
      log.warn(`telemetry ${what} dropped`, { error: (err as Error).message });
    }
  };
  const flushProviders = async () => {
    const providers = [
      otelLogs.logs.getLoggerProvider(),
      otel.metrics.getMeterProvider(),
    ] as ForceFlushable[];
    for (const p of providers) {
      try {
        await p.forceFlush?.();
      } catch (err) {
        log.warn('telemetry flush failed', { error: (err as Error).message });
      }
    }
  };

  const instance: Telemetry = {
    enabled: true,
    trackEvent(name, props) {
      guard('event', () =>
        logger.emit({ body: name, attributes: { ...cleanProps(props), [CUSTOM_EVENT_ATTRIBUTE]: name } }),
      );
    },
    trackMetric(name, value, props) {
      if (!Number.isFinite(value)) {
        log.warn('telemetry metric dropped: value is not a finite number', { metric: name });
        return;
      }
      guard('metric', () => {
        let h = histograms.get(name);
        if (!h) {
          h = meter.createHistogram(name);
          histograms.set(name, h);
        }
        h.record(value, cleanProps(props));
      });
    },
    flush: flushProviders,
    async shutdown() {
      await flushProviders();
      try {
        await distro.shutdownAzureMonitor();
      } finally {
        if (active === instance) active = undefined;
      }
    },
  };
  active = instance;
  log.info('telemetry enabled', { entraId: clientId !== undefined });
  return instance;
}

let shared: Telemetry | undefined;

/** The process-wide telemetry, created from process.env on first use. */
export function telemetry(): Telemetry {
  shared ??= createTelemetry();
  return shared;
}

export function trackEvent(name: TelemetryEventName, props?: TelemetryProps): void {
  telemetry().trackEvent(name, props);
}

export function trackMetric(name: TelemetryMetricName, value: number, props?: TelemetryProps): void {
  telemetry().trackMetric(name, value, props);
}
