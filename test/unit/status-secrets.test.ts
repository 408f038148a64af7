/**
 * /api/status and the dashboard show why a part could not be read; those errors come from the Azure
 * SDKs and connection strings, so they can quote secrets (issue #20). Tried as someone reading the
 * status page would find them: account keys, SAS signatures, passwords and tokens never appear, the
 * error code and the rest of the message stay useful.
 */
import {
  assembleStatus,
  describeError,
  formatBytes,
  formatDuration,
  formatRelative,
  progressOf,
} from '../../shared/domain/status-view';
import { PipelineError } from '../../shared/domain/errors';

const ACCOUNT_KEY =
  'q3Zx9Yw0bUKa7n2Wk8Ff1Hh4Jj6Ll5Mm0Nn3Pp7Rr9Tt2Vv4Xx6Zz8Bb1Dd3Gg5Ii7Kk9Oo2Ss4Uu6Ww8Yy0Aa==';
const SAS_SIG = 'sVpW%2B3kq8L9m0zXy1AbCdEfGhIjKlMnOpQrStUvWxYz%3D';
const CONN = `DefaultEndpointsProtocol=https;AccountName=odoomtaprod;AccountKey=${ACCOUNT_KEY};EndpointSuffix=core.windows.net`;

describe('secrets in errors shown on the status page', () => {
  test.each([
    ['a storage connection string', `cannot read ledger: ${CONN}`, [ACCOUNT_KEY]],
    [
      'a SAS token outside a URL',
      `AuthorizationFailure: sv=2022-11-02&ss=b&srt=co&sp=r&se=2026-12-31T00:00:00Z&sig=${SAS_SIG}&spr=https`,
      [SAS_SIG],
    ],
    [
      'a SAS connection string',
      `BlobEndpoint=https://x.blob.core.windows.net/;SharedAccessSignature=sv2022${SAS_SIG}`,
      [SAS_SIG],
    ],
    [
      'a password setting',
      'pg_dump failed: Host=10.0.0.4;Username=odoo;Password=Hunter2-Prod!;Database=odoo',
      ['Hunter2-Prod!'],
    ],
    ['a PASSWORD in capitals', 'PASSWORD=Hunter2 rejected', ['Hunter2']],
    [
      'a function key in a query',
      'POST /api/refresh?code=AbCdEf123456789-xyz== failed',
      ['AbCdEf123456789-xyz=='],
    ],
    [
      'a token and a key',
      'token=ghs_16C7e42F292c6912E7710c838347Ae178B4a and key=k-9f8e7d6c',
      ['ghs_16C7e42F292c6912E7710c838347Ae178B4a', 'k-9f8e7d6c'],
    ],
    [
      'a URL with a SAS signature',
      `GET https://odoomtaprod.blob.core.windows.net/ledger/uat.json?sv=2022&sig=${SAS_SIG} 403`,
      [SAS_SIG, 'odoomtaprod.blob.core.windows.net'],
    ],
    [
      'a plain http URL',
      'connect ECONNREFUSED http://127.0.0.1:10000/devstoreaccount1',
      ['127.0.0.1:10000', 'devstoreaccount1'],
    ],
  ])('%s is hidden, the rest of the message stays', (_what, message, secrets) => {
    const shown = describeError(new Error(`[BLOB.UNAVAILABLE] ${message}`));
    expect(shown.code).toBe('BLOB.UNAVAILABLE');
    for (const s of secrets) expect(shown.message).not.toContain(s);
    expect(shown.message.length).toBeGreaterThan(10);
    expect(shown.message).toMatch(/<redacted>|<url>/);
  });

  test('what is hidden is replaced by a marker that says so, next to its name', () => {
    expect(describeError(`x AccountKey=${ACCOUNT_KEY};EndpointSuffix=core.windows.net`).message).toBe(
      'x AccountKey=<redacted>;EndpointSuffix=core.windows.net',
    );
    expect(describeError('se=2026&sig=abc&spr=https').message).toBe('se=2026&sig=<redacted>&spr=https');
    expect(describeError('Password=p1 and password=p2').message).toBe(
      'Password=<redacted> and password=<redacted>',
    );
    expect(describeError('see https://example.net/a?b=c now').message).toBe('see <url> now');
  });

  test('a secret in a failing part never reaches the status document, wherever the part is', () => {
    const err = new PipelineError('BLOB.UNAVAILABLE', `listing backups: ${CONN} sig=${SAS_SIG}`);
    const doc = assembleStatus({
      now: new Date('2026-12-06T05:00:00Z'),
      environments: ['uat', 'prod'],
      ledger: { uat: { ok: false, error: err }, prod: { ok: false, error: err } },
      instances: { ok: false, error: err },
      lanes: {},
      backups: { uat: { ok: false, error: err }, prod: { ok: false, error: err } },
    });
    const json = JSON.stringify(doc);
    expect(json).not.toContain(ACCOUNT_KEY);
    expect(json).not.toContain(SAS_SIG);
    expect(json).toContain('BLOB.UNAVAILABLE');
    expect(doc.problems.length).toBeGreaterThanOrEqual(4);
  });

  test('the code comes from the error when it has one, else from the message, else the fallback', () => {
    expect(describeError(new PipelineError('LEDGER.BAD', 'x'))).toEqual({ code: 'LEDGER.BAD', message: 'x' });
    expect(
      describeError(Object.assign(new Error('[BLOB.THROTTLED] slow down'), { code: 'ECONNRESET' })),
    ).toEqual({ code: 'BLOB.THROTTLED', message: 'slow down' });
    expect(describeError(new Error('plain'))).toEqual({ code: 'STATUS.UNAVAILABLE', message: 'plain' });
    expect(describeError(new Error('plain'), 'STATUS.BAD_DATA')).toEqual({
      code: 'STATUS.BAD_DATA',
      message: 'plain',
    });
    expect(describeError({ weird: true })).toEqual({ code: 'STATUS.UNAVAILABLE', message: 'unknown error' });
    expect(describeError(new Error('[X.Y]'))).toEqual({ code: 'X.Y', message: 'X.Y' });
  });

  test('a long error is cut to 300 characters (after the secrets are hidden)', () => {
    const long = describeError(new Error(`${'x'.repeat(290)} password=${'s'.repeat(40)}`));
    expect(long.message).toHaveLength(300);
    expect(long.message).not.toContain('ssss');
  });
});

describe('figures for people', () => {
  test('progress on the runbook, aliases and unknown kinds', () => {
    // the step in plain words beside its place on the runbook
    expect(progressOf('deployUat', 'prepare')).toEqual({
      step: 'prepare',
      text: 'preparing',
      index: 1,
      total: 11,
      percent: 0,
    });
    expect(progressOf('deployUat', 'done')).toEqual({
      step: 'done',
      text: 'finished',
      index: 11,
      total: 11,
      percent: 100,
    });
    expect(progressOf('deployUat', 'wait-image')).toEqual({
      step: 'wait-image',
      text: 'waiting for the image',
      index: 2,
      total: 11,
      percent: 10,
    });
    expect(progressOf('deployProd', 'retag')).toEqual({
      step: 'retag',
      text: 'promoting the UAT image to PROD',
      index: 3,
      total: 12,
      percent: 18,
    });
    expect(progressOf('deployProd', undefined)).toEqual({ step: 'starting' });
    expect(progressOf('refreshUat', 'restore')).toEqual({ step: 'restore', text: 'restoring the PROD copy' });
  });

  test('sizes in binary units, durations and relative times', () => {
    expect([
      formatBytes(0),
      formatBytes(1023),
      formatBytes(1024),
      formatBytes(1536),
      formatBytes(5 * 1024 ** 5),
      formatBytes(Number.NaN),
      formatBytes(undefined),
    ]).toEqual(['0 B', '1023 B', '1.0 KiB', '1.5 KiB', '5120.0 TiB', '?', '?']);
    expect([
      formatDuration(0),
      formatDuration(59_999),
      formatDuration(60_000),
      formatDuration(3_599_000),
      formatDuration(3_600_000),
      formatDuration(47 * 3_600_000 + 59 * 60_000),
      formatDuration(48 * 3_600_000),
      formatDuration(-1),
      formatDuration(Infinity),
    ]).toEqual(['0s', '59s', '1m 00s', '59m 59s', '1h 00m', '47h 59m', '2d 0h', '?', '?']);
    const now = new Date('2026-12-06T05:00:00Z');
    expect(formatRelative('2026-12-06T05:03:05Z', now)).toBe('in 3m 05s');
    expect(formatRelative('2026-12-06T04:59:18Z', now)).toBe('42s ago');
    expect(formatRelative('2026-12-06T05:00:00Z', now)).toBe('in 0s');
    expect(formatRelative('not a date', now)).toBe('?');
  });
});
