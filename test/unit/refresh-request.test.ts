/**
 * POST /api/refresh, the body rules (issue #20): the refresh overwrites its target, so the request is
 * judged before anything runs — PROD is never a target, every problem is named at once, and names
 * derived from the request (instance id, database name) stay inside what Durable Functions and
 * PostgreSQL accept.
 */
import {
  FILESTORE_MODES,
  REFRESH_ID,
  refreshDatabaseName,
  refreshInstanceId,
  validateRefreshBody,
} from '../../shared/domain/refresh';
import { loadConfig } from '../../shared/config';
import { refreshSettingsFromConfig } from '../../functions/activities/refresh';

const good = {
  source: 'prod',
  target: 'uat',
  filestore: 'copy',
  backup: 'latest',
  reason: 'reproduce ticket 4711 on fresh data',
};

describe('what a refresh request must say', () => {
  test('the documented request is accepted, with or without the optional fields', () => {
    expect(validateRefreshBody(good)).toEqual([]);
    expect(validateRefreshBody({ source: 'prod', target: 'uat', reason: 'why' })).toEqual([]);
    for (const filestore of ['copy', 'drop', 'skip'])
      expect(validateRefreshBody({ ...good, filestore })).toEqual([]);
    for (const backup of ['fresh', 'latest']) expect(validateRefreshBody({ ...good, backup })).toEqual([]);
    expect(FILESTORE_MODES).toEqual({ copy: 'copy', drop: 'drop-anonymized', skip: 'none' });
  });

  test('PROD is never a target: the refusal says why', () => {
    expect(validateRefreshBody({ ...good, target: 'prod' })).toEqual([
      'target may not be "prod": a refresh overwrites its target, and PROD is never overwritten',
    ]);
    expect(validateRefreshBody({ ...good, target: 'PROD' })).toEqual(['target must be "uat"']);
    expect(validateRefreshBody({ ...good, target: undefined })).toEqual(['target must be "uat"']);
  });

  test('UAT is refreshed from PROD only', () => {
    for (const source of ['uat', 'staging', '', undefined, 1])
      expect(validateRefreshBody({ ...good, source })).toEqual([
        'source must be "prod" (the only environment UAT is refreshed from)',
      ]);
  });

  test('a filestore or backup mode outside the list is refused, including names every object has', () => {
    const filestoreProblem =
      'filestore must be "copy", "drop" (drop attachments of anonymized records) or "skip"';
    for (const filestore of [
      'none',
      'drop-anonymized',
      'COPY',
      '',
      null,
      1,
      ['copy'],
      'toString',
      'constructor',
      '__proto__',
      'hasOwnProperty',
    ])
      expect(validateRefreshBody({ ...good, filestore })).toEqual([filestoreProblem]);
    for (const backup of ['now', 'Fresh', '', null, 0])
      expect(validateRefreshBody({ ...good, backup })).toEqual([
        'backup must be "fresh" (take a PROD backup now) or "latest" (the latest verified PROD backup)',
      ]);
  });

  test('the reason must say why: at least 3 characters that are not blanks, at most 500', () => {
    const tooShort = 'reason must say why (at least 3 characters)';
    for (const reason of [undefined, '', 'ab', '   ab   ', 42])
      expect(validateRefreshBody({ ...good, reason })).toEqual([tooShort]);
    expect(validateRefreshBody({ ...good, reason: 'abc' })).toEqual([]);
    expect(validateRefreshBody({ ...good, reason: 'r'.repeat(500) })).toEqual([]);
    expect(validateRefreshBody({ ...good, reason: 'r'.repeat(501) })).toEqual([
      'reason must be at most 500 characters',
    ]);
  });

  test('an unknown field is named (a typo must not silently fall back to a default)', () => {
    expect(validateRefreshBody({ ...good, filestor: 'skip' })).toEqual([
      'unknown field "filestor" (accepted: source, target, filestore, backup, reason)',
    ]);
  });

  test('everything wrong is reported at once, in a stable order', () => {
    expect(validateRefreshBody({ target: 'prod', filestore: 'all', backup: 'x', extra: 1 })).toEqual([
      'unknown field "extra" (accepted: source, target, filestore, backup, reason)',
      'source must be "prod" (the only environment UAT is refreshed from)',
      'target may not be "prod": a refresh overwrites its target, and PROD is never overwritten',
      'filestore must be "copy", "drop" (drop attachments of anonymized records) or "skip"',
      'backup must be "fresh" (take a PROD backup now) or "latest" (the latest verified PROD backup)',
      'reason must say why (at least 3 characters)',
    ]);
  });

  test('a body that is not a JSON object is refused as such', () => {
    for (const body of [null, undefined, 'prod', 42, true, [good], []])
      expect(validateRefreshBody(body)).toEqual(['the body must be a JSON object']);
  });
});

describe('names derived from a refresh', () => {
  const at = new Date('2026-12-06T05:07:09.123Z');

  test('the instance id carries the request time and a clean suffix, and the status route accepts it', () => {
    expect(refreshInstanceId(at, 'AB12cd34')).toBe('refresh-uat-20261206t050709z-ab12cd34');
    expect(REFRESH_ID.test(refreshInstanceId(at, 'AB12cd34'))).toBe(true);
    expect(refreshInstanceId(at, 'x-y')).toBe('refresh-uat-20261206t050709z-xy00');
    expect(refreshInstanceId(at, '0123456789abcdefXYZ')).toBe('refresh-uat-20261206t050709z-0123456789ab');
    expect(refreshInstanceId(at, '../..')).toBe('refresh-uat-20261206t050709z-0000');
    for (const suffix of ['', '!', 'a', 'abcd', 'ABCDEFGHIJKLMNOP', 'a/b\\c d'])
      expect(refreshInstanceId(at, suffix)).toMatch(REFRESH_ID);
  });

  test('the status route refuses ids that are not refresh ids', () => {
    for (const id of [
      'refresh-uat-20261206t050709z-abc',
      'refresh-uat-20261206t050709z-ABCD',
      'x-refresh-uat-20261206t050709z-abcd',
      'refresh-uat-20261206t050709z-abcd/../x',
      'refresh-uat-20261206t050709z-0123456789abc',
    ])
      expect(REFRESH_ID.test(id)).toBe(false);
  });

  test("the restore database is <live>_refresh_<timestamp> and never longer than PostgreSQL's 63 characters", () => {
    expect(refreshDatabaseName('odoo_uat', at)).toBe('odoo_uat_refresh_20261206050709');
    const long = refreshDatabaseName('d'.repeat(80), at);
    expect(long).toHaveLength(63);
    expect(long).toBe(`${'d'.repeat(40)}_refresh_20261206050709`);
  });
});

describe('the filestore mode a request picks (functions/activities/refresh.ts)', () => {
  test('names inherited from Object.prototype are not modes: the configured mode applies', () => {
    const config = loadConfig({ REFRESH_FILESTORE: 'none' });
    for (const filestore of ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf'])
      expect(refreshSettingsFromConfig(config, { filestore }).filestore).toBe('none');
    expect(refreshSettingsFromConfig(config, { filestore: 'drop' }).filestore).toBe('drop-anonymized');
    expect(refreshSettingsFromConfig(config, { filestore: 'copy' }).filestore).toBe('copy');
    expect(refreshSettingsFromConfig(config, {}).filestore).toBe('none');
  });
});
