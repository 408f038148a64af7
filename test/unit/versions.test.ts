import { compareVersions, normaliseVersion, parseEnvTag, promoteTag, sortEnvTags, tagFor } from '../../shared/domain/versions';

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
    for (const bad of ['latest', 'uat-1.4.0', 'uat-v1.4', 'staging-v1.0.0', 'uat-v01.2.3', 'uat-v1.2.3 ']) expect(parseEnvTag(bad)).toBeUndefined();
  });

  test('sort by semver (not by string), newest first, one stage only', () => {
    const tags = ['uat-v1.9.0', 'uat-v1.10.0', 'prod-v9.0.0', 'uat-v1.10.0-rc.1', 'latest', 'uat-v1.2.0'];
    expect(sortEnvTags(tags, 'uat').map((t) => t.tag)).toEqual(['uat-v1.10.0', 'uat-v1.10.0-rc.1', 'uat-v1.9.0', 'uat-v1.2.0']);
  });

  test('promote uat → prod and compare', () => {
    expect(promoteTag('uat-v1.2.3')).toBe('prod-v1.2.3');
    expect(() => promoteTag('prod-v1.2.3')).toThrow(/VERSION.INVALID/);
    expect(compareVersions('1.10.0', 'v1.9.0')).toBe(1);
    expect(compareVersions('1.0.0', '1.0.0')).toBe(0);
    expect(() => compareVersions('x', '1.0.0')).toThrow(/VERSION.INVALID/);
  });
});
