import { planBackupRetention, planTagRetention } from '../../shared/domain/retention';

describe('planTagRetention', () => {
  const tags = ['uat-v1.0.0', 'uat-v1.1.0', 'uat-v1.2.0', 'uat-v1.3.0', 'uat-v1.4.0', 'uat-v1.5.0', 'uat-v1.10.0', 'prod-v1.0.0', 'latest', 'build-123'];

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
