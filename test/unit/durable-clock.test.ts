import { realClock, TestClock, isTestClock } from '../../local/durable/clock';
import { failureFromThrown } from '../../local/durable/engine';

describe('durable clocks', () => {
  test('TestClock fires due timers in time order, skips cancelled ones, refuses negative steps', async () => {
    const c = new TestClock(1000);
    const fired: string[] = [];
    c.at(3000, () => fired.push('b'));
    c.at(2000, () => fired.push('a'));
    const cancel = c.at(2500, () => fired.push('cancelled'));
    cancel();
    c.at(9000, () => fired.push('later'));
    let settled = 0;
    const detach = c.addSettler(async () => {
      settled++;
    });
    await c.advance(2000);
    expect(fired).toEqual(['a', 'b']);
    expect(c.now()).toBe(3000);
    expect(c.pendingTimers()).toBe(1);
    expect(settled).toBeGreaterThanOrEqual(3);
    detach();
    await expect(c.advance(-1)).rejects.toThrow(RangeError);
    expect(isTestClock(c)).toBe(true);
    expect(isTestClock(realClock)).toBe(false);
  });

  test('realClock fires soon for a past time and can be cancelled, including beyond the setTimeout limit', async () => {
    const fired = await new Promise<boolean>((resolve) => {
      const keep = setTimeout(() => resolve(false), 5000);
      realClock.at(realClock.now() - 10, () => {
        clearTimeout(keep);
        resolve(true);
      });
    });
    expect(fired).toBe(true);
    let far = false;
    const cancel = realClock.at(realClock.now() + 40 * 24 * 3600_000, () => (far = true)); // > 24.8 days: chained
    cancel();
    expect(far).toBe(false);
  });
});

describe('failure details of thrown values', () => {
  test('Error, structured provider payload, string, object, undefined', () => {
    const e = new TypeError('bad type');
    expect(failureFromThrown(e)).toMatchObject({
      ErrorType: 'TypeError',
      ErrorMessage: 'bad type',
      IsNonRetriable: false,
    });
    const payload = new Error(
      JSON.stringify({
        errorType: 'PipelineError',
        errorMessage: '[SSH.AUTH_FAILED] denied',
        isNonRetriable: true,
        properties: { code: 'SSH.AUTH_FAILED' },
      }),
    );
    expect(failureFromThrown(payload)).toMatchObject({
      ErrorType: 'PipelineError',
      ErrorMessage: '[SSH.AUTH_FAILED] denied',
      IsNonRetriable: true,
      Properties: { code: 'SSH.AUTH_FAILED' },
    });
    expect(failureFromThrown('just text')).toMatchObject({ ErrorType: 'Error', ErrorMessage: 'just text' });
    expect(failureFromThrown({ a: 1 }).ErrorMessage).toBe('{"a":1}');
    expect(failureFromThrown(undefined).ErrorMessage).toBe('undefined was thrown');
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(failureFromThrown(circular).ErrorMessage).toBe('[object Object]');
  });
});
