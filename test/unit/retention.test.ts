import { planBackupRetention, planTagRetention } from '../../shared/domain/retention';

describe('planTagRetention', () => {
  const tags = [
    'uat-v1.0.0',
    'uat-v1.1.0',
    'uat-v1.2.0',
    'uat-v1.3.0',
    'uat-v1.4.0',
    'uat-v1.5.0',
    'uat-v1.10.0',
    'prod-v1.0.0',
    'latest',
    'build-123',
  ];

  test('keeps the newest N by semver and deletes the rest, oldest first', () => {
    expect(planTagRetention(tags, 'uat', 5, [])).toEqual({
      kept: ['uat-v1.10.0', 'uat-v1.5.0', 'uat-v1.4.0', 'uat-v1.3.0', 'uat-v1.2.0'],
      deleted: ['uat-v1.0.0', 'uat-v1.1.0'],
    });
  });

  test('never deletes the running or previous tag', () => {
    const p = planTagRetention(tags, 'uat', 5, ['uat-v1.0.0', 'uat-v1.1.0']);
    expect(p.deleted).toEqual([]);
    expect(p.kept).toContain('uat-v1.0.0');
    const q = planTagRetention(tags, 'uat', 2, ['uat-v1.1.0', 'uat-v1.0.0', '']);
    expect(q.deleted).toEqual(['uat-v1.2.0', 'uat-v1.3.0', 'uat-v1.4.0']);
    for (const t of ['uat-v1.1.0', 'uat-v1.0.0']) expect(q.kept).toContain(t);
  });

  test('other stages and non-release tags are never touched', () => {
    const p = planTagRetention(tags, 'prod', 1, []);
    expect(p).toEqual({ kept: ['prod-v1.0.0'], deleted: [] });
    expect(planTagRetention(tags, 'uat', 1, []).deleted).not.toContain('latest');
  });

  test('invalid N', () => {
    expect(() => planTagRetention(tags, 'uat', 0, [])).toThrow(/RETENTION.INVALID/);
    expect(() => planTagRetention(tags, 'uat', 1.5, [])).toThrow(/RETENTION.INVALID/);
  });
});

describe('planBackupRetention', () => {
  const now = new Date('2026-06-30T00:00:00Z');
  const day = (d: number) => new Date(now.getTime() - d * 86400_000);

  test('deletes complete backups older than keepDays, keeps at least the newest complete', () => {
    const p = planBackupRetention(
      [
        { id: 'a', createdAt: day(40), complete: true },
        { id: 'b', createdAt: day(20), complete: true },
        { id: 'c', createdAt: day(3), complete: true },
      ],
      14,
      now,
    );
    expect(p).toEqual({ kept: ['c'], deleted: ['b', 'a'] });
  });

  test('a stale environment keeps its last restore point', () => {
    const p = planBackupRetention(
      [
        { id: 'old', createdAt: day(400), complete: true },
        { id: 'older', createdAt: day(500), complete: true },
      ],
      90,
      now,
      { keepAtLeast: 1 },
    );
    expect(p).toEqual({ kept: ['old'], deleted: ['older'] });
  });

  test('incomplete backups: kept within the grace period (may be running), deleted after', () => {
    const p = planBackupRetention(
      [
        { id: 'running', createdAt: new Date(now.getTime() - 3600_000), complete: false },
        { id: 'failed', createdAt: day(2), complete: false },
        { id: 'good', createdAt: day(1), complete: true },
      ],
      14,
      now,
    );
    expect(p).toEqual({ kept: ['running', 'good'], deleted: ['failed'] });
    // an incomplete backup never counts as the "newest complete" one
    const q = planBackupRetention(
      [
        { id: 'half', createdAt: day(30), complete: false },
        { id: 'whole', createdAt: day(31), complete: true },
      ],
      14,
      now,
    );
    expect(q).toEqual({ kept: ['whole'], deleted: ['half'] });
  });

  test('invalid keepDays', () => {
    expect(() => planBackupRetention([], 0, now)).toThrow(/RETENTION.INVALID/);
  });
});

describe('backup retention, as an operator relies on it', () => {
  const now = new Date('2026-06-30T12:00:00Z');
  const DAY = 86400_000;
  const ago = (ms: number) => new Date(now.getTime() - ms);

  test('a backup inside the retention window is never deleted, however many there are', () => {
    const backups = [
      { id: 'three-days', createdAt: ago(3 * DAY), complete: true },
      { id: 'ten-days', createdAt: ago(10 * DAY), complete: true },
      { id: 'thirteen-days', createdAt: ago(13 * DAY), complete: true },
      { id: 'fifteen-days', createdAt: ago(15 * DAY), complete: true },
    ];
    const p = planBackupRetention(backups, 14, now);
    expect(p.kept).toEqual(['three-days', 'ten-days', 'thirteen-days']);
    expect(p.deleted).toEqual(['fifteen-days']);
  });

  test('the window is measured back from now: a backup exactly keepDays old is kept, one millisecond older is not', () => {
    const p = planBackupRetention(
      [
        { id: 'newest', createdAt: ago(DAY), complete: true },
        { id: 'on-the-edge', createdAt: ago(7 * DAY), complete: true },
        { id: 'just-past', createdAt: ago(7 * DAY + 1), complete: true },
      ],
      7,
      now,
    );
    expect(p).toEqual({ kept: ['newest', 'on-the-edge'], deleted: ['just-past'] });
  });

  test('the order backups are listed in does not matter: the newest complete ones are the restore points kept', () => {
    const p = planBackupRetention(
      [
        { id: 'b-60', createdAt: ago(60 * DAY), complete: true },
        { id: 'b-50', createdAt: ago(50 * DAY), complete: true },
        { id: 'b-90', createdAt: ago(90 * DAY), complete: true },
        { id: 'b-40', createdAt: ago(40 * DAY), complete: true },
      ],
      30,
      now,
      { keepAtLeast: 2 },
    );
    expect(p).toEqual({ kept: ['b-40', 'b-50'], deleted: ['b-60', 'b-90'] });
  });

  test('keepAtLeast 0 lets a stale environment lose old backups, but never one inside the window', () => {
    const p = planBackupRetention(
      [
        { id: 'fresh', createdAt: ago(DAY), complete: true },
        { id: 'stale', createdAt: ago(100 * DAY), complete: true },
      ],
      30,
      now,
      { keepAtLeast: 0 },
    );
    expect(p).toEqual({ kept: ['fresh'], deleted: ['stale'] });
    expect(
      planBackupRetention([{ id: 'only', createdAt: ago(100 * DAY), complete: true }], 30, now, {
        keepAtLeast: 0,
      }),
    ).toEqual({ kept: [], deleted: ['only'] });
  });

  test('a backup still being written (no manifest yet) survives for the grace period, measured from now', () => {
    const backups = [
      { id: 'running-23h', createdAt: ago(23 * 3600_000), complete: false },
      { id: 'edge-24h', createdAt: ago(24 * 3600_000), complete: false },
      { id: 'dead-25h', createdAt: ago(25 * 3600_000), complete: false },
    ];
    expect(planBackupRetention(backups, 14, now)).toEqual({
      kept: ['running-23h', 'edge-24h'],
      deleted: ['dead-25h'],
    });
    // a shorter grace is honoured; incomplete backups are judged by age even inside the retention window
    expect(planBackupRetention(backups, 14, now, { incompleteGraceHours: 2 })).toEqual({
      kept: [],
      deleted: ['running-23h', 'edge-24h', 'dead-25h'],
    });
  });

  test('a retention of zero, negative or unreadable days is refused before anything is planned', () => {
    const one = [{ id: 'x', createdAt: ago(DAY), complete: true }];
    for (const bad of [0, -1, Number.NaN])
      expect(() => planBackupRetention(one, bad, now)).toThrow(
        /\[RETENTION\.INVALID\] keepDays must be positive/,
      );
    expect(planBackupRetention(one, 0.5, now)).toEqual({ kept: ['x'], deleted: [] });
  });
});

describe('image tag retention, as an operator relies on it', () => {
  test('a tag of another stage, or not a release tag at all, is never deleted even when far over the limit', () => {
    const tags = [
      'uat-v1.0.0',
      'uat-v1.1.0',
      'uat-v1.2.0',
      'preprod-v0.0.1',
      'prod-v0.1.0',
      'uat-v1.2',
      'latest',
      'sha-abc',
    ];
    const p = planTagRetention(tags, 'uat', 1, []);
    expect(p).toEqual({ kept: ['uat-v1.2.0'], deleted: ['uat-v1.0.0', 'uat-v1.1.0'] });
  });

  test('a protected tag of the stage stays even when it is the oldest; it does not push a newer one out', () => {
    const tags = ['prod-v2.0.0', 'prod-v1.0.0', 'prod-v3.0.0', 'prod-v2.5.0'];
    expect(planTagRetention(tags, 'prod', 2, ['prod-v1.0.0'])).toEqual({
      kept: ['prod-v3.0.0', 'prod-v2.5.0', 'prod-v1.0.0'],
      deleted: ['prod-v2.0.0'],
    });
  });

  test('a negative or fractional count is refused with the value named', () => {
    expect(() => planTagRetention(['uat-v1.0.0'], 'uat', -3, [])).toThrow(
      '[RETENTION.INVALID] keep must be a positive integer (got -3)',
    );
    expect(planTagRetention(['uat-v1.0.0', 'uat-v1.0.1'], 'uat', 1, [])).toEqual({
      kept: ['uat-v1.0.1'],
      deleted: ['uat-v1.0.0'],
    });
  });
});
