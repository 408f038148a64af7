/**
 * Guard: the engine keeps its own copies of durable-functions' wire enums and action shapes (they are
 * not public API). This test fails when the installed library disagrees, e.g. after an upgrade.
 */
import {
  ActionType,
  ENGINE_SCHEMA_VERSION,
  HistoryEventType,
  LONG_RUNNING_TIMER_INTERVAL_DURATION,
  LONG_RUNNING_TIMER_INTERVAL_MS,
  MAXIMUM_SHORT_TIMER_DURATION,
  MAXIMUM_SHORT_TIMER_MS,
  ReplaySchema,
  RuntimeStatus,
} from '../../local/durable/enums';

/* eslint-disable @typescript-eslint/no-require-imports -- internal modules of the library, on purpose */
const lib = (p: string) => require(`durable-functions/lib/src/${p}`) as Record<string, unknown>;

function numericMembers(e: Record<string, unknown>): Record<string, number> {
  return Object.fromEntries(Object.entries(e).filter(([, v]) => typeof v === 'number')) as Record<
    string,
    number
  >;
}

describe('durable-functions wire contract', () => {
  test('the installed library is the version the engine was written against', () => {
    const pkg = require('durable-functions/package.json') as { version: string };
    expect(pkg.version).toBe('3.5.0');
  });

  test('history event types match', () => {
    expect(
      numericMembers(lib('history/HistoryEventType').HistoryEventType as Record<string, unknown>),
    ).toEqual(HistoryEventType);
  });

  test('action types match', () => {
    expect(numericMembers(lib('actions/ActionType').ActionType as Record<string, unknown>)).toEqual(
      ActionType,
    );
  });

  test('replay schema: the engine speaks V3, which the library supports', () => {
    const rs = lib('orchestrations/ReplaySchema');
    expect(numericMembers(rs.ReplaySchema as Record<string, unknown>)).toEqual(ReplaySchema);
    expect(rs.LatestReplaySchema as number).toBeGreaterThanOrEqual(ENGINE_SCHEMA_VERSION);
    expect(ENGINE_SCHEMA_VERSION).toBe(2);
  });

  test('runtime statuses match', () => {
    expect(lib('orchestrations/OrchestrationRuntimeStatus').OrchestrationRuntimeStatus).toEqual(
      RuntimeStatus,
    );
  });

  test('action field names the engine reads are the ones the library writes', () => {
    const { RetryOptions } = lib('RetryOptions') as { RetryOptions: new (a: number, b: number) => object };
    const ro = new RetryOptions(1000, 3);
    const mk = (p: string, cls: string, ...args: unknown[]) => {
      const C = lib(p)[cls] as new (...a: unknown[]) => Record<string, unknown>;
      return Object.keys(new C(...args)).sort();
    };
    expect(mk('actions/CallActivityAction', 'CallActivityAction', 'f', 'x')).toEqual([
      'actionType',
      'functionName',
      'input',
    ]);
    expect(mk('actions/CallActivityWithRetryAction', 'CallActivityWithRetryAction', 'f', ro, 'x')).toEqual([
      'actionType',
      'functionName',
      'input',
      'retryOptions',
    ]);
    expect(mk('actions/CallSubOrchestratorAction', 'CallSubOrchestratorAction', 'f', 'id', 'x')).toEqual([
      'actionType',
      'functionName',
      'input',
      'instanceId',
      'version',
    ]);
    expect(
      mk(
        'actions/CallSubOrchestratorWithRetryAction',
        'CallSubOrchestratorWithRetryAction',
        'f',
        ro,
        'x',
        'id',
      ),
    ).toEqual(['actionType', 'functionName', 'input', 'instanceId', 'retryOptions', 'version']);
    expect(mk('actions/CreateTimerAction', 'CreateTimerAction', new Date())).toEqual([
      'actionType',
      'fireAt',
      'isCanceled',
    ]);
    expect(mk('actions/WaitForExternalEventAction', 'WaitForExternalEventAction', 'e')).toEqual([
      'actionType',
      'externalEventName',
      'reason',
    ]);
    expect(mk('actions/ContinueAsNewAction', 'ContinueAsNewAction', 1)).toEqual(['actionType', 'input']);
    expect(mk('actions/WhenAllAction', 'WhenAllAction', [])).toEqual(['actionType', 'compoundActions']);
    expect(Object.keys(ro).sort()).toEqual(['firstRetryIntervalInMilliseconds', 'maxNumberOfAttempts']);
  });

  test('string inputs are JSON-encoded by the library (the engine decodes them)', () => {
    const C = lib('actions/CallActivityAction').CallActivityAction as new (
      f: string,
      i: unknown,
    ) => { input: unknown };
    expect(new C('f', 'abc').input).toBe('"abc"');
    expect(new C('f', { a: 1 }).input).toEqual({ a: 1 });
  });

  test('timer durations handed to the orchestrator parse to the values the engine splits with', () => {
    const moment = require('moment') as { duration(s: string): { valueOf(): number } };
    expect(moment.duration(MAXIMUM_SHORT_TIMER_DURATION).valueOf()).toBe(MAXIMUM_SHORT_TIMER_MS);
    expect(moment.duration(LONG_RUNNING_TIMER_INTERVAL_DURATION).valueOf()).toBe(
      LONG_RUNNING_TIMER_INTERVAL_MS,
    );
  });

  test('the orchestration failure marker the engine parses is the one the library throws', () => {
    const { OrchestrationFailureError } = lib('error/OrchestrationFailureError') as {
      OrchestrationFailureError: new (e: unknown, s: unknown) => Error;
    };
    const err = new OrchestrationFailureError(false, { error: 'boom' });
    expect(err.message).toContain('$OutOfProcData$:{"error":"boom"}');
  });

  test('the executor exposes the sequence counter the engine cross-checks', () => {
    const { TaskOrchestrationExecutor } = lib('orchestrations/TaskOrchestrationExecutor') as {
      TaskOrchestrationExecutor: new () => { sequenceNumber: unknown };
    };
    expect(new TaskOrchestrationExecutor().sequenceNumber).toBe(0);
  });
});
