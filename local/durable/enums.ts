/**
 * Our own copies of the wire enums the `durable-functions` library speaks with the Durable extension.
 * They are not public API of the library; `test/unit/durable-guard.test.ts` fails if the installed
 * library disagrees with these values.
 */
export const HistoryEventType = {
  ExecutionStarted: 0,
  ExecutionCompleted: 1,
  ExecutionFailed: 2,
  ExecutionTerminated: 3,
  TaskScheduled: 4,
  TaskCompleted: 5,
  TaskFailed: 6,
  SubOrchestrationInstanceCreated: 7,
  SubOrchestrationInstanceCompleted: 8,
  SubOrchestrationInstanceFailed: 9,
  TimerCreated: 10,
  TimerFired: 11,
  OrchestratorStarted: 12,
  OrchestratorCompleted: 13,
  EventSent: 14,
  EventRaised: 15,
  ContinueAsNew: 16,
  GenericEvent: 17,
  HistoryState: 18,
  ExecutionSuspended: 19,
  ExecutionResumed: 20,
} as const;
export type HistoryEventTypeValue = (typeof HistoryEventType)[keyof typeof HistoryEventType];

export const ActionType = {
  CallActivity: 0,
  CallActivityWithRetry: 1,
  CallSubOrchestrator: 2,
  CallSubOrchestratorWithRetry: 3,
  ContinueAsNew: 4,
  CreateTimer: 5,
  WaitForExternalEvent: 6,
  CallEntity: 7,
  CallHttp: 8,
  SignalEntity: 9,
  WhenAny: 11,
  WhenAll: 12,
  LockEntities: 13,
  ReleaseEntities: 14,
} as const;

/** Replay schema versions (durable-functions `ReplaySchema`). */
export const ReplaySchema = { V1: 0, V2: 1, V3: 2, V4: 3 } as const;

/**
 * The schema version this engine speaks: V3 (all actions since the start, nested; long timers split
 * by the host). V4 only adds entity locks, which the engine does not support.
 */
export const ENGINE_SCHEMA_VERSION = ReplaySchema.V3;

/** Timer settings handed to the orchestrator (the extension's defaults for Azure Storage). */
export const MAXIMUM_SHORT_TIMER_DURATION = '6.00:00:00';
export const LONG_RUNNING_TIMER_INTERVAL_DURATION = '3.00:00:00';
export const MAXIMUM_SHORT_TIMER_MS = 6 * 24 * 3600 * 1000;
export const LONG_RUNNING_TIMER_INTERVAL_MS = 3 * 24 * 3600 * 1000;
export const DEFAULT_HTTP_ASYNC_SLEEP_MS = 30000;

/** Azure's limit for custom status (16 KB of JSON text). */
export const MAX_CUSTOM_STATUS_CHARS = 16 * 1024;

export const RuntimeStatus = {
  Running: 'Running',
  Completed: 'Completed',
  ContinuedAsNew: 'ContinuedAsNew',
  Failed: 'Failed',
  Canceled: 'Canceled',
  Terminated: 'Terminated',
  Pending: 'Pending',
  Suspended: 'Suspended',
} as const;
export type RuntimeStatusValue = (typeof RuntimeStatus)[keyof typeof RuntimeStatus];

export const TERMINAL_STATUSES: readonly string[] = [
  RuntimeStatus.Completed,
  RuntimeStatus.Failed,
  RuntimeStatus.Terminated,
  RuntimeStatus.Canceled,
];

export function isTerminal(status: string): boolean {
  return TERMINAL_STATUSES.includes(status);
}

export function historyEventName(type: number): string {
  for (const [k, v] of Object.entries(HistoryEventType)) if (v === type) return k;
  return `Unknown(${type})`;
}
