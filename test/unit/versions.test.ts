import {
  compareVersions,
  normaliseVersion,
  parseEnvTag,
  promoteTag,
  sortEnvTags,
  tagFor,
} from '../../shared/domain/versions';
import { planTagRetention } from '../../shared/domain/retention';

describe('versions', () => {
  test('normalise accepts X.Y.Z with or without v, refuses partial or garbage', () => {
    expect(normaliseVersion('v1.2.3')).toBe('1.2.3');
    expect(normaliseVersion(' 1.2.3-rc.1 ')).toBe('1.2.3-rc.1');
    expect(normaliseVersion('1.2')).toBeUndefined();
    expect(normaliseVersion('latest')).toBeUndefined();
    expect(normaliseVersion(undefined as unknown as string)).toBeUndefined();
  });

  test('format and parse env tags', () => {
    expect(tagFor('uat', 'v1.4.0')).toBe('uat-v1.4.0');
    expect(tagFor('prod', '2.0.0-rc.2')).toBe('prod-v2.0.0-rc.2');
    expect(() => tagFor('uat', '1.4')).toThrow(/VERSION.INVALID/);
    expect(() => tagFor('dev' as 'uat', '1.4.0')).toThrow(/VERSION.INVALID/);
    expect(parseEnvTag('uat-v1.4.0')).toEqual({ stage: 'uat', version: '1.4.0', tag: 'uat-v1.4.0' });
    expect(parseEnvTag('prod-v10.0.1')).toEqual({ stage: 'prod', version: '10.0.1', tag: 'prod-v10.0.1' });
    for (const bad of ['latest', 'uat-1.4.0', 'uat-v1.4', 'staging-v1.0.0', 'uat-v01.2.3', 'uat-v1.2.3 '])
      expect(parseEnvTag(bad)).toBeUndefined();
  });

  test('sort by semver (not by string), newest first, one stage only', () => {
    const tags = ['uat-v1.9.0', 'uat-v1.10.0', 'prod-v9.0.0', 'uat-v1.10.0-rc.1', 'latest', 'uat-v1.2.0'];
    expect(sortEnvTags(tags, 'uat').map((t) => t.tag)).toEqual([
      'uat-v1.10.0',
      'uat-v1.10.0-rc.1',
      'uat-v1.9.0',
      'uat-v1.2.0',
    ]);
  });

  test('promote uat → prod and compare', () => {
    expect(promoteTag('uat-v1.2.3')).toBe('prod-v1.2.3');
    expect(() => promoteTag('prod-v1.2.3')).toThrow(/VERSION.INVALID/);
    expect(compareVersions('1.10.0', 'v1.9.0')).toBe(1);
    expect(compareVersions('1.0.0', '1.0.0')).toBe(0);
    expect(() => compareVersions('x', '1.0.0')).toThrow(/VERSION.INVALID/);
  });
});

describe('what counts as a release tag (retention deletes only those)', () => {
  test('preprod-v1.2.3 is not a PROD tag, and uat-v1.2.3-suffix tags of other tools are not ours', () => {
    for (const foreign of ['preprod-v1.2.3', 'xuat-v1.2.3', 'notprod-v1.0.0', 'my-prod-v1.0.0'])
      expect(parseEnvTag(foreign)).toBeUndefined();
    expect(sortEnvTags(['preprod-v9.9.9', 'prod-v1.0.0'], 'prod').map((t) => t.tag)).toEqual(['prod-v1.0.0']);
    expect(planTagRetention(['preprod-v1.2.3', 'prod-v1.0.0', 'prod-v1.1.0'], 'prod', 1, [])).toEqual({
      kept: ['prod-v1.1.0'],
      deleted: ['prod-v1.0.0'],
    });
  });

  test('a version needs a v right before its digits: "v" alone, or a v before a letter, is not stripped into a version', () => {
    expect(normaliseVersion('vv1.2.3')).toBeUndefined();
    expect(normaliseVersion('x1.2.3')).toBeUndefined();
    expect(normaliseVersion('1.2.3')).toBe('1.2.3');
    expect(tagFor('uat', ' v1.2.3 ')).toBe('uat-v1.2.3');
  });

  test('bad input is refused with a clear error naming it', () => {
    expect(() => tagFor('uat', 'banana')).toThrow(
      '[VERSION.INVALID] "banana" is not a semantic version (X.Y.Z)',
    );
    expect(() => tagFor('staging' as 'uat', '1.0.0')).toThrow(
      '[VERSION.INVALID] unknown stage "staging" (expected uat or prod)',
    );
    expect(() => promoteTag('latest')).toThrow('[VERSION.INVALID] "latest" is not a uat-vX.Y.Z tag');
    expect(() => compareVersions('1.0.0', 'nope')).toThrow(
      '[VERSION.INVALID] cannot compare "1.0.0" and "nope"',
    );
    expect(parseEnvTag(undefined as unknown as string)).toBeUndefined();
  });

  test('comparison follows semver order in both directions', () => {
    expect(compareVersions('v1.9.0', '1.10.0')).toBe(-1);
    expect(compareVersions('2.0.0-rc.1', '2.0.0')).toBe(-1);
  });

  test('a promoted tag keeps the exact version, pre-release included', () => {
    expect(promoteTag('uat-v2.0.0-rc.2')).toBe('prod-v2.0.0-rc.2');
    expect(parseEnvTag('prod-v2.0.0-rc.2')).toEqual({
      stage: 'prod',
      version: '2.0.0-rc.2',
      tag: 'prod-v2.0.0-rc.2',
    });
  });
});

test('a tag with a line break is not a release tag, even when its first line is one', () => {
  for (const tag of ['uat-v1.2.3\nlatest', 'prod-v1.2.3\n', 'prod-v1.2.3\r\nx'])
    expect(parseEnvTag(tag)).toBeUndefined();
  expect(planTagRetention(['prod-v1.0.0\nkeep', 'prod-v1.0.0', 'prod-v1.1.0'], 'prod', 1, [])).toEqual({
    kept: ['prod-v1.1.0'],
    deleted: ['prod-v1.0.0'],
  });
});
