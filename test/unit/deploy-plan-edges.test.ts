/**
 * Edges of the deploy plan that a wrong line would get past unnoticed (issue #20, round 4): which
 * folders of a diff are Odoo modules to update, what an image reference's tag / repository / registry
 * is when a part is missing, the reason shown to people for an error of any shape, and deploy input
 * whose text would pass but whose JSON type is wrong.
 */
import {
  modulesToUpdate,
  reasonOf,
  registryOf,
  repositoryOf,
  tagOf,
  validateDeployInput,
} from '../../shared/domain/deploy-plan';
import { errorCode } from '../../shared/domain/errors';

describe('modules to update: only addon folders', () => {
  test.each([
    'docs',
    'doc',
    'test',
    'tests',
    'scripts',
    'infrastructure',
    'bench',
    'sql',
    'node_modules',
    'odoo',
    'setup',
    'tools',
    'ci',
    'docker',
  ])('a change under the repository folder %s/ is no module: nothing is updated for it', (folder) => {
    expect(modulesToUpdate([`${folder}/x/y.py`, `${folder}/README.md`])).toBe('');
    // beside a real module change, only the module is updated
    expect(modulesToUpdate([`${folder}/x.py`, 'sale_x/models/a.py'])).toBe('sale_x');
  });

  test('a top-level folder whose name is not a module name (a dash, a dot, capitals after a valid start) is no module', () => {
    expect(modulesToUpdate(['sale_x-old/models/a.py'])).toBe('');
    expect(modulesToUpdate(['sale_x.bak/models/a.py'])).toBe('');
    expect(modulesToUpdate(['addons/sale_x-old/models/a.py'])).toBe('');
    expect(modulesToUpdate(['sale_xY/models/a.py'])).toBe('');
  });
});

describe('image references with a part missing', () => {
  test('a bare name has no tag and is its own repository on Docker Hub', () => {
    expect(tagOf('odoo')).toBeUndefined();
    expect(repositoryOf('odoo')).toBe('odoo');
    expect(registryOf('odoo')).toBe('');
  });

  test('a single-part name with a dot or a tag is a Docker Hub repository, not a registry host', () => {
    expect(repositoryOf('my.odoo:uat-v1')).toBe('my.odoo');
    expect(repositoryOf('my.odoo')).toBe('my.odoo');
    expect(registryOf('my.odoo:uat-v1')).toBe('');
  });

  test('a reference that is only a digest has no tag and names no repository', () => {
    const digestOnly = '@sha256:' + 'b'.repeat(64);
    expect(tagOf(digestOnly)).toBeUndefined();
    expect(repositoryOf(digestOnly)).toBe('');
  });
});

describe('the reason people read', () => {
  test('a code of more than two parts is kept whole with its line', () => {
    expect(reasonOf(new Error('Activity failed: [ODOO_SH.BUILD.FAILED] build 42 failed\n  at x'))).toBe(
      '[ODOO_SH.BUILD.FAILED] build 42 failed',
    );
    // the same code the retry and outcome rules read
    expect(errorCode(new Error('[ODOO_SH.BUILD.FAILED] x'))).toBe('ODOO_SH.BUILD.FAILED');
  });

  test('a failure with nothing to say (undefined) still reads as a reason, never as "undefined"', () => {
    expect(reasonOf(undefined)).toBe('unknown error');
  });
});

describe('deploy input of the wrong JSON type is refused even when its text would pass', () => {
  const ok = { environment: 'uat', version: '1.2.3', sha: 'abcdef1', imageRef: 'reg.io/o:uat-v1.2.3' };
  test.each([
    ['environment', 7, 'environment must be a lowercase name'],
    ['version', 123, 'version must be like 1.2.3'],
    ['sha', 1234567, 'sha must be a hex commit id'],
    ['imageRef', ['odoo'], 'imageRef must be an image reference'],
  ] as const)('%s given as %p', (field, value, problem) => {
    expect(validateDeployInput({ ...ok, [field]: value })).toEqual([problem]);
  });
});
