/**
 * host.json against the code's own limits: a function (an activity holding an SSH command open for a
 * migration or a backup) must not be killed by the host before the command's own timeout fires.
 * Flex Consumption: functionTimeout defaults to 30 min and may be set higher, up to unbounded
 * (https://learn.microsoft.com/azure/azure-functions/functions-scale#timeout).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, SETTINGS } from '../../shared/config';

const ROOT = path.resolve(__dirname, '..', '..');
const host = JSON.parse(readFileSync(path.join(ROOT, 'host.json'), 'utf8')) as { functionTimeout?: string };

/** host.json TimeSpan ("hh:mm:ss" or "d.hh:mm:ss") in seconds; "-1" is unbounded. */
function seconds(span: string): number {
  if (span.trim() === '-1') return Infinity;
  const m = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})$/.exec(span.trim());
  if (!m) throw new Error(`functionTimeout ${span} is not a TimeSpan`);
  return Number(m[1] ?? 0) * 86400 + Number(m[2]) * 3600 + Number(m[3]) * 60 + Number(m[4]);
}

/** The largest value a setting's schema accepts (searching its integer range). */
function maxAccepted(key: keyof typeof SETTINGS): number {
  let lo = 1;
  let hi = 10_000_000;
  const ok = (n: number) => {
    try {
      loadConfig({ [key]: String(n) });
      return true;
    } catch {
      return false;
    }
  };
  expect(ok(hi)).toBe(false);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (ok(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

describe('host.json functionTimeout', () => {
  const MARGIN = 5 * 60;

  it('is set explicitly (the Flex default, 30 min, is shorter than a migration may take)', () => {
    expect(host.functionTimeout).toBeDefined();
    expect(seconds(String(host.functionTimeout))).toBeGreaterThan(30 * 60);
  });

  it('outlasts the longest SSH command the settings allow, plus the connect timeout and a margin', () => {
    const command = maxAccepted('SSH_COMMAND_TIMEOUT_SECONDS');
    const connect = maxAccepted('SSH_CONNECT_TIMEOUT_SECONDS');
    expect(command).toBeGreaterThanOrEqual(Number(SETTINGS.SSH_COMMAND_TIMEOUT_SECONDS.default));
    expect(seconds(String(host.functionTimeout))).toBeGreaterThanOrEqual(command + connect + MARGIN);
    // and the default leaves room as well
    expect(seconds(String(host.functionTimeout))).toBeGreaterThanOrEqual(
      Number(SETTINGS.SSH_COMMAND_TIMEOUT_SECONDS.default) + MARGIN,
    );
  });
});
